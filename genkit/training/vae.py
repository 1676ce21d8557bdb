"""``genkit train vae``: an AutoencoderKL for the shapes images (Stable Diffusion's VAE structure), or with
``--data objects3d`` for views of the 3-D objects of text-to-3D (a pool rendered once).

Loss: L1 + MSE reconstruction and a tiny KL term (SD's VAEs use KL weight ~1e-6), on batches from the
seeded procedural stream. After training, the latent ``scaling_factor`` is set to 1/std of the latents
(as SD's 0.18215), so the denoiser sees unit-variance latents.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from diffusers.training_utils import EMAModel

from genkit.data.shapes import shapes_stream
from genkit.models.presets import VAE_PRESETS
from genkit.training.loop import (
    TrainStep,
    device_field,
    make_accelerator,
    progress,
    resume,
    save_checkpoint,
    save_dtype,
    save_dtype_field,
)
from genkit.utils import GenkitError, atomic_dir


@dataclass
class VAETrainConfig:
    out: str = field(default="runs/vae", metadata={"help": "run folder: checkpoints/ and the final model/"})
    preset: str = field(
        default="vae-shapes-f2", metadata={"help": "VAE preset", "choices": list(VAE_PRESETS)}
    )
    max_train_steps: int = field(default=2500, metadata={"help": "optimizer steps"})
    batch_size: int = field(default=32, metadata={"help": "images per step"})
    learning_rate: float = field(default=1e-3, metadata={"help": "AdamW learning rate (cosine decay)"})
    kl_weight: float = field(default=1e-6, metadata={"help": "weight of the KL term"})
    resolution: int = field(default=32, metadata={"help": "image side in pixels"})
    data: str = field(
        default="shapes",
        metadata={
            "help": "training images: the 2-D shapes stream, or a rendered pool of 3-D object views",
            "choices": ["shapes", "objects3d"],
        },
    )
    pool_size: int = field(default=8000, metadata={"help": "objects3d: views in the rendered pool"})
    seed: int = field(default=0, metadata={"help": "seed of data, noise and initialisation"})
    checkpointing_steps: int = field(
        default=250, metadata={"help": "save a resumable checkpoint every N steps"}
    )
    ema_decay: float = field(default=0.999, metadata={"help": "max EMA decay of the saved weights"})
    mixed_precision: str = field(
        default="no", metadata={"help": "accelerate mixed precision", "choices": ["no", "fp16", "bf16"]}
    )
    save_dtype: str = save_dtype_field()
    device: str = device_field()

    def __post_init__(self):
        if self.max_train_steps <= 0 or self.batch_size <= 0 or self.checkpointing_steps <= 0:
            raise GenkitError("max-train-steps, batch-size and checkpointing-steps must be positive")
        if self.pool_size <= 0:
            raise GenkitError("pool-size must be positive")


def pool_stream(pool: torch.Tensor, batch_size: int, seed: int, start: int = 0):
    """Batches drawn from a fixed pool of images; batch k depends only on (seed, k)."""
    for k in itertools.count(start):
        idx = np.random.default_rng([seed, 7, k]).integers(0, len(pool), batch_size)
        yield {"pixel_values": pool[torch.as_tensor(idx)]}


def autoencode(vae: AutoencoderKL, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Reconstruction of ``x`` through a sampled latent, and the mean KL of the posterior."""
    posterior = vae.encode(x).latent_dist
    return vae.decode(posterior.sample()).sample, posterior.kl().mean()


def train_vae(cfg: VAETrainConfig) -> Path:
    out = Path(cfg.out)
    accelerator = make_accelerator(out, cfg.seed, cfg.mixed_precision, cfg.device)
    vae = AutoencoderKL(**{**VAE_PRESETS[cfg.preset], "sample_size": cfg.resolution})
    optimizer = torch.optim.AdamW(vae.parameters(), lr=cfg.learning_rate, weight_decay=0.0)
    lr_sched = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=cfg.max_train_steps, eta_min=cfg.learning_rate * 0.05
    )
    step_fn, optimizer, lr_sched = accelerator.prepare(TrainStep(vae), optimizer, lr_sched)
    ema = EMAModel(vae.parameters(), decay=cfg.ema_decay, use_ema_warmup=True, power=3 / 4)
    ema.to(accelerator.device)
    start = resume(accelerator, out, states={"ema": ema})

    # Each process reads its own slice of the seeded stream.
    seed = cfg.seed * 1000 + accelerator.process_index
    pool = None
    if cfg.data == "objects3d":  # sphere tracing is slow: render a pool once, draw batches from it
        from genkit.data.objects3d import render_pool

        pool = render_pool(cfg.pool_size, cfg.resolution, seed=cfg.seed, split="all")["pixel_values"]
        data = pool_stream(pool, cfg.batch_size, seed, start)
    else:
        data = shapes_stream(cfg.batch_size, cfg.resolution, seed=seed, start=start)
    bar = progress(accelerator, cfg.max_train_steps, start, "train vae")
    for step in range(start, cfg.max_train_steps):
        x = next(data)["pixel_values"].to(accelerator.device)
        with accelerator.accumulate(step_fn):
            recon, kl = step_fn(autoencode, x)
            rec = F.l1_loss(recon, x) + F.mse_loss(recon, x)
            loss = rec + cfg.kl_weight * kl
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(vae.parameters(), 1.0)
            optimizer.step()
            lr_sched.step()
            optimizer.zero_grad(set_to_none=True)
        ema.step(vae.parameters())
        bar.update(1)
        bar.set_postfix(rec=f"{rec.item():.4f}")
        if (step + 1) % cfg.checkpointing_steps == 0 or step + 1 == cfg.max_train_steps:
            save_checkpoint(accelerator, out, step + 1, states={"ema": ema})
    bar.close()

    # Export the EMA weights with a measured latent scaling factor.
    model = vae
    ema.copy_to(model.parameters())
    model.eval()
    with torch.no_grad():
        if pool is not None:
            x = pool[:512]
        else:
            x = next(shapes_stream(512, cfg.resolution, seed=cfg.seed + 777))["pixel_values"]
        x = x.to(accelerator.device)
        std = model.encode(x).latent_dist.mode().std().item()
    model.register_to_config(scaling_factor=round(1.0 / std, 5))
    final = out / "model"
    if accelerator.is_main_process:
        with atomic_dir(final) as tmp:
            model.to(save_dtype(cfg.save_dtype)).save_pretrained(tmp, safe_serialization=True)
    accelerator.end_training()
    return final
