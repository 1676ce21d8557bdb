"""``genkit train video-classifier``: the video network that genkit's video metrics read clips with.

Trained on every (colour, shape, motion) combination of the moving-shapes data (held-out ones included),
fresh clips every step, with the image oracle's degradations (blur, noise, colour shifts) on each frame,
so that it judges a generator's content and motion, not its sharpness.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from genkit.data.video import VideoDataset
from genkit.metrics.video import VIDEO_HEADS, VideoClassifier
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
class VideoClassifierTrainConfig:
    out: str = field(
        default="runs/video-classifier", metadata={"help": "run folder: checkpoints/ and the final model/"}
    )
    max_train_steps: int = field(default=600, metadata={"help": "optimizer steps"})
    batch_size: int = field(default=32, metadata={"help": "clips per step"})
    frames: int = field(default=16, metadata={"help": "frames per clip (a multiple of 4)"})
    learning_rate: float = field(default=2e-3, metadata={"help": "AdamW learning rate (one-cycle)"})
    seed: int = field(default=0, metadata={"help": "seed of data, augmentation and initialisation"})
    checkpointing_steps: int = field(
        default=200, metadata={"help": "save a resumable checkpoint every N steps"}
    )
    save_dtype: str = save_dtype_field()
    device: str = device_field()

    def __post_init__(self):
        if min(self.max_train_steps, self.batch_size, self.checkpointing_steps) <= 0:
            raise GenkitError("max-train-steps, batch-size and checkpointing-steps must be positive")
        if self.frames < 4 or self.frames % 4:
            raise GenkitError(f"--frames must be a positive multiple of 4, got {self.frames}")


def train_video_classifier(cfg: VideoClassifierTrainConfig) -> Path:
    out = Path(cfg.out)
    accelerator = make_accelerator(out, cfg.seed, device=cfg.device)
    device = accelerator.device
    model = VideoClassifier(frames=cfg.frames)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=1e-4)
    lr_sched = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.learning_rate, total_steps=cfg.max_train_steps
    )
    model, optimizer, lr_sched = accelerator.prepare(model, optimizer, lr_sched)
    start = resume(accelerator, out)

    bar = progress(accelerator, cfg.max_train_steps, start, "train video-classifier")
    for step in range(start, cfg.max_train_steps):
        # fresh clips every step, a function of (seed, process, step) only: a resumed run sees the same
        data = VideoDataset(
            cfg.batch_size,
            cfg.frames,
            seed=(cfg.seed * 1000 + accelerator.process_index) * 1_000_000 + step,
            split="all",
        )
        batch = data.batch(range(cfg.batch_size))
        clips = batch["pixel_values"]
        clips = degrade(clips.flatten(0, 1)).view_as(clips).to(device)
        labels = {k: v.to(device) for k, v in batch["labels"].items()}
        out_ = model(clips)
        loss = sum(F.cross_entropy(out_[k], labels[k]) for k in VIDEO_HEADS)
        for k in ("shape", "color"):  # every frame shows the clip's shape and colour
            logits = out_[f"frame_{k}"]
            loss = loss + F.cross_entropy(logits.flatten(0, 1), labels[k].repeat_interleave(cfg.frames))
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
