"""``genkit train objects3d-classifier``: the network that reads text-to-3D renders (shape, colour, marker).

Trained on a pool of procedural views of every colour-shape pair (held-out pairs included: it is a
measuring instrument, not a generator), with the image oracle's degradations (blur, noise, colour
shifts) and dark speckles like a young radiance field's, so that it judges what an object is and which
side of it is in view, not how clean its render is. The marker label is exact: whether the front marker
covers at least ``MARKER_PIXELS`` pixels of the view.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from genkit.data.objects3d import COLORS3D, SHAPES3D, render_pool
from genkit.metrics.objects3d import MARKER_PIXELS, OBJECT_HEADS, Objects3DClassifier
from genkit.training.classifier import degrade
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
class Objects3DClassifierTrainConfig:
    out: str = field(
        default="runs/objects3d-classifier",
        metadata={"help": "run folder: checkpoints/ and the final model/"},
    )
    max_train_steps: int = field(default=1500, metadata={"help": "optimizer steps"})
    batch_size: int = field(default=64, metadata={"help": "views per step"})
    pool_size: int = field(default=6000, metadata={"help": "procedural views rendered once at the start"})
    resolution: int = field(default=32, metadata={"help": "view side in pixels"})
    learning_rate: float = field(default=2e-3, metadata={"help": "AdamW learning rate (one-cycle)"})
    seed: int = field(default=0, metadata={"help": "seed of data, augmentation and initialisation"})
    checkpointing_steps: int = field(
        default=500, metadata={"help": "save a resumable checkpoint every N steps"}
    )
    save_dtype: str = save_dtype_field()
    device: str = device_field()

    def __post_init__(self):
        if min(self.max_train_steps, self.batch_size, self.pool_size, self.checkpointing_steps) <= 0:
            raise GenkitError(
                "max-train-steps, batch-size, pool-size and checkpointing-steps must be positive"
            )
        if self.resolution < 8 or self.resolution % 8:
            raise GenkitError(f"--resolution must be a positive multiple of 8, got {self.resolution}")


def speckle(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Darken a random 0-15% of the pixels of half the images (in [-1, 1]) by up to 60%."""
    n = x.shape[0]
    rate = (
        torch.rand(n, 1, 1, 1, generator=generator)
        * 0.15
        * (torch.rand(n, 1, 1, 1, generator=generator) < 0.5)
    )
    hit = torch.rand(n, 1, *x.shape[2:], generator=generator) < rate
    scale = 1 - 0.6 * torch.rand(n, 1, *x.shape[2:], generator=generator)
    return torch.where(hit, (x + 1) * scale - 1, x)


def train_objects3d_classifier(cfg: Objects3DClassifierTrainConfig) -> Path:
    out = Path(cfg.out)
    accelerator = make_accelerator(out, cfg.seed, device=cfg.device)
    device = accelerator.device
    pool = render_pool(
        cfg.pool_size,
        cfg.resolution,
        seed=cfg.seed * 1000 + 17,
        split="all",
        progress=accelerator.is_main_process,
    )
    images = pool["pixel_values"]
    labels = {
        "shape": torch.tensor([SHAPES3D.index(o.shape) for o in pool["objects"]]),
        "color": torch.tensor([list(COLORS3D).index(o.color) for o in pool["objects"]]),
        # scale the pixel count to the 32x32 views the threshold is set for
        "marker": (pool["marker_pixels"] * (32 / cfg.resolution) ** 2 >= MARKER_PIXELS).long(),
    }

    model = Objects3DClassifier(resolution=cfg.resolution)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=1e-4)
    lr_sched = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.learning_rate, total_steps=cfg.max_train_steps
    )
    model, optimizer, lr_sched = accelerator.prepare(model, optimizer, lr_sched)
    start = resume(accelerator, out)

    bar = progress(accelerator, cfg.max_train_steps, start, "train objects3d-classifier")
    for step in range(start, cfg.max_train_steps):
        # batch, augmentation and flips of step k are a function of (seed, process, k): resumable
        g = torch.Generator().manual_seed((cfg.seed * 1000 + accelerator.process_index) * 1_000_003 + step)
        idx = torch.randint(len(images), (cfg.batch_size,), generator=g)
        torch.manual_seed(int(torch.randint(2**31, (1,), generator=g)))  # degrade draws from the global RNG
        x = degrade(speckle(images[idx], g)).to(device)
        logits = model(x)
        loss = sum(F.cross_entropy(logits[k], labels[k][idx].to(device)) for k in OBJECT_HEADS)
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
