"""``genkit train classifier``: the oracle that genkit's metrics read images with.

Trained on every attribute combination of the procedural data, with degradations that generated
images show (blur, noise, colour shifts), so that it judges a generator's content, not its sharpness.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from genkit.data.shapes import shapes_stream
from genkit.metrics.classifier import HEADS, ShapesClassifier
from genkit.training.loop import (
    device_field,
    make_accelerator,
    progress,
    resume,
    save_checkpoint,
    save_dtype_field,
    save_model,
)
from genkit.utils import GenkitError


@dataclass
class ClassifierTrainConfig:
    out: str = field(
        default="runs/classifier", metadata={"help": "run folder: checkpoints/ and the final model/"}
    )
    max_train_steps: int = field(default=800, metadata={"help": "optimizer steps"})
    batch_size: int = field(default=64, metadata={"help": "images per step"})
    learning_rate: float = field(default=2e-3, metadata={"help": "AdamW learning rate (cosine decay)"})
    resolution: int = field(default=32, metadata={"help": "image side in pixels"})
    seed: int = field(default=0, metadata={"help": "seed of data, augmentation and initialisation"})
    checkpointing_steps: int = field(
        default=200, metadata={"help": "save a resumable checkpoint every N steps"}
    )
    save_dtype: str = save_dtype_field()
    device: str = device_field()

    def __post_init__(self):
        if self.max_train_steps <= 0 or self.batch_size <= 0 or self.checkpointing_steps <= 0:
            raise GenkitError("max-train-steps, batch-size and checkpointing-steps must be positive")


def degrade(x: torch.Tensor) -> torch.Tensor:
    """Random blur, noise and colour shift on images in [-1, 1]; 40% of each batch is left clean."""
    n = x.shape[0]
    blurred = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="bilinear", align_corners=False)
    y = torch.where(torch.rand(n, 1, 1, 1) < 0.3, blurred, x)
    y = y + torch.randn_like(y) * torch.rand(n, 1, 1, 1) * 0.08
    y = y + (torch.rand(n, 3, 1, 1) - 0.5) * 0.1
    return torch.where(torch.rand(n, 1, 1, 1) < 0.4, x, y.clamp(-1, 1))


def train_classifier(cfg: ClassifierTrainConfig) -> Path:
    out = Path(cfg.out)
    accelerator = make_accelerator(out, cfg.seed, device=cfg.device)
    model = ShapesClassifier(resolution=cfg.resolution)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=1e-4)
    lr_sched = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.learning_rate, total_steps=cfg.max_train_steps
    )
    model, optimizer, lr_sched = accelerator.prepare(model, optimizer, lr_sched)
    start = resume(accelerator, out)

    data = shapes_stream(
        cfg.batch_size,
        cfg.resolution,
        seed=cfg.seed * 1000 + 500 + accelerator.process_index,
        split="all",
        start=start,
    )
    bar = progress(accelerator, cfg.max_train_steps, start, "train classifier")
    for step in range(start, cfg.max_train_steps):
        batch = next(data)
        x = degrade(batch["pixel_values"]).to(accelerator.device)
        logits = model(x)
        loss = sum(F.cross_entropy(logits[k], batch["labels"][k].to(accelerator.device)) for k in HEADS)
        accelerator.backward(loss)
        optimizer.step()
        lr_sched.step()
        optimizer.zero_grad(set_to_none=True)
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if (step + 1) % cfg.checkpointing_steps == 0 or step + 1 == cfg.max_train_steps:
            save_checkpoint(accelerator, out, step + 1)
    bar.close()

    return save_model(accelerator, accelerator.unwrap_model(model), out, cfg.save_dtype)
