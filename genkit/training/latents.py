"""What the latent-diffusion trainers (``text2img``, ``fpdm``) share: their common options and the latent
cache they sample batches from."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL
from tqdm.auto import tqdm

from genkit.data.shapes import ShapesDataset
from genkit.training.loop import device_field, save_dtype, save_dtype_field
from genkit.utils import GenkitError, atomic_dir


@dataclass
class LatentTrainConfig:
    """Options common to the trainers of latent denoisers (subclasses add theirs)."""

    max_train_steps: int = field(default=3500, metadata={"help": "optimizer steps"})
    batch_size: int = field(default=64, metadata={"help": "latents per step"})
    learning_rate: float = field(default=5e-4, metadata={"help": "AdamW peak learning rate"})
    lr_warmup_steps: int = field(default=200, metadata={"help": "linear warm-up steps before cosine decay"})
    caption_dropout: float = field(
        default=0.1, metadata={"help": "probability of training on the empty prompt (for CFG)"}
    )
    num_train_images: int = field(
        default=40000, metadata={"help": "size of the seeded training set whose latents are cached"}
    )
    ema_decay: float = field(default=0.9995, metadata={"help": "max EMA decay of the saved weights"})
    seed: int = field(default=0, metadata={"help": "seed of data, noise and initialisation"})
    checkpointing_steps: int = field(
        default=500, metadata={"help": "save a resumable checkpoint every N steps"}
    )
    mixed_precision: str = field(
        default="no", metadata={"help": "accelerate mixed precision", "choices": ["no", "fp16", "bf16"]}
    )
    save_dtype: str = save_dtype_field("pipeline")
    device: str = device_field()

    def __post_init__(self):
        if min(self.max_train_steps, self.batch_size, self.checkpointing_steps, self.num_train_images) <= 0:
            raise GenkitError(
                "max-train-steps, batch-size, checkpointing-steps and num-train-images must be positive"
            )
        if not 0 <= self.caption_dropout < 1:
            raise GenkitError("caption-dropout must be in [0, 1)")


@torch.no_grad()
def encode_posterior(vae: AutoencoderKL, batches, total: int, desc: str = "encode latents"):
    """(mean, std) of the VAE posterior, times the scaling factor, of image batches (..., C, H, W) in
    [-1, 1] (leading dimensions kept), concatenated along the first; on the CPU in float32."""
    means, stds = [], []
    for x in tqdm(batches, total=total, desc=desc, unit="batch"):
        lead = x.shape[:-3]
        dist = vae.encode(x.flatten(0, len(lead) - 1).to(vae.device, vae.dtype)).latent_dist
        means.append(dist.mean.float().cpu().unflatten(0, lead))
        stds.append(dist.std.float().cpu().unflatten(0, lead))
    s = vae.config.scaling_factor
    return torch.cat(means) * s, torch.cat(stds) * s


@torch.no_grad()
def vae_roundtrip(vae: AutoencoderKL, images: torch.Tensor, chunk: int = 64) -> torch.Tensor:
    """``images`` (..., C, H, W) in [-1, 1] encoded (the posterior mean) and decoded, ``chunk`` images at a
    time: what the VAE alone keeps of them. Same shape, clamped to [-1, 1], on the CPU in float32."""
    flat = images.reshape(-1, *images.shape[-3:])
    out = [
        vae.decode(vae.encode(x.to(vae.device, vae.dtype)).latent_dist.mean).sample.float().cpu()
        for x in flat.split(chunk)
    ]
    return torch.cat(out).clamp(-1, 1).view(images.shape)


class LatentCache:
    """The VAE posterior (mean, std, times the scaling factor) of a seeded set of training images, and their
    captions, computed once, as diffusers' training examples cache latents. Each batch still draws a fresh
    latent sample from the posterior."""

    stream = 4  # the batch RNG's stream (another cache draws its own)

    def __init__(
        self, vae: AutoencoderKL, num_images: int, seed: int, split: str = "train", chunk: int = 500
    ):
        self.dataset = ShapesDataset(num_images, vae.config.sample_size, seed=seed, split=split)
        starts = range(0, num_images, chunk)
        batches = (self.dataset.batch(range(i, min(i + chunk, num_images)))["pixel_values"] for i in starts)
        self.mean, self.std = encode_posterior(vae, batches, len(starts))
        self.captions = [self.dataset.attrs_caption(i) for i in range(num_images)]

    def __len__(self) -> int:
        return len(self.captions)

    def batch(self, seed: int, process_index: int, step: int, batch_size: int, caption_dropout: float):
        """(latents, caption indices, dropped mask) of one step; depends only on (seed, process, step),
        so a resumed run draws the same batch. Latent noise comes from torch's (checkpointed) RNG."""
        rng = np.random.default_rng([seed, self.stream, process_index, step])
        idx = torch.as_tensor(rng.integers(0, len(self), size=batch_size))
        drop = torch.as_tensor(rng.random(batch_size) < caption_dropout)
        latents = self.mean[idx] + self.std[idx] * torch.randn_like(self.std[idx])
        return latents, idx, drop


def diffusion_target(
    scheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
) -> torch.Tensor:
    """What the denoiser regresses: the noise (epsilon) or the velocity (v), per the scheduler's config."""
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    raise GenkitError(f"unsupported prediction type {kind!r}")


def load_text_encoder_as_fp32(config_path: Path) -> None:
    """Weights stay fp16 on disk; the config's ``dtype`` (what transformers loads *into* by default) is set
    to float32, so a plain ``StableDiffusionPipeline.from_pretrained(dir)`` gives fp32 everywhere, as
    diffusers already does for the UNet and VAE."""
    cfg = json.loads(config_path.read_text())
    cfg["dtype"] = "float32"
    config_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def save_pipeline(pipe, final: Path, dtype: str, training: dict | None = None) -> None:
    """``save_pretrained`` in ``dtype`` ("fp32"/"fp16") into ``final`` atomically, text encoder loading as
    fp32, with ``training`` (the run's configuration) as ``training.json`` beside the components."""
    with atomic_dir(final) as tmp:
        pipe.to(dtype=save_dtype(dtype)).save_pretrained(tmp, safe_serialization=True)
        load_text_encoder_as_fp32(tmp / "text_encoder" / "config.json")
        if training is not None:
            (tmp / "training.json").write_text(json.dumps(training, indent=2) + "\n")
