"""``genkit train tiny-decoder``: a small decoder for a pipeline's latents (diffusers' ``AutoencoderTiny``,
the TAESD structure), so that one-step students are not held back by the VAE decode.

The decoder learns to map the latents of a pipeline's ``AutoencoderKL`` (posterior samples of a seeded set
of procedural images, computed once) back to the images, with MSE + L1. Its ``scaling_factor`` is the KL
VAE's, so ``vae.decode(latents / vae.config.scaling_factor)`` works unchanged in any pipeline; the encoder
half is left untrained (only decoding is needed). ``genkit distill --decoder RUN/model`` ships it with a
student.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, AutoencoderTiny

from genkit.loading import resolve_model
from genkit.training.latents import LatentCache
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
class TinyDecoderTrainConfig:
    vae_from: str = field(
        default="text2img-shapes",
        metadata={"help": "bundled model name or pipeline folder whose VAE to mimic"},
    )
    out: str = field(default="runs/tiny-decoder", metadata={"help": "run folder: checkpoints/ and model/"})
    channels: int = field(default=32, metadata={"help": "decoder width"})
    max_train_steps: int = field(default=4000, metadata={"help": "optimizer steps"})
    batch_size: int = field(default=64, metadata={"help": "latents per step"})
    learning_rate: float = field(default=2e-3, metadata={"help": "AdamW learning rate (cosine decay)"})
    num_train_images: int = field(default=10000, metadata={"help": "seeded training images (latents cached)"})
    seed: int = field(default=0, metadata={"help": "seed of data and initialisation"})
    checkpointing_steps: int = field(
        default=500, metadata={"help": "save a resumable checkpoint every N steps"}
    )
    save_dtype: str = save_dtype_field()
    device: str = device_field()

    def __post_init__(self):
        if (
            min(
                self.channels,
                self.max_train_steps,
                self.batch_size,
                self.num_train_images,
                self.checkpointing_steps,
            )
            <= 0
        ):
            raise GenkitError(
                "channels, max-train-steps, batch-size, num-train-images and checkpointing-steps must be positive"
            )


def train_tiny_decoder(cfg: TinyDecoderTrainConfig) -> Path:
    out = Path(cfg.out)
    accelerator = make_accelerator(out, cfg.seed, device=cfg.device)
    device = accelerator.device
    vae = AutoencoderKL.from_pretrained(resolve_model(cfg.vae_from), subfolder="vae").to(device).eval()
    vae.requires_grad_(False)
    ups = len(vae.config.block_out_channels) - 1  # the KL VAE's downsampling: as many upsamplings
    decoder = AutoencoderTiny(
        latent_channels=vae.config.latent_channels,
        encoder_block_out_channels=(cfg.channels,) * (ups + 1),
        decoder_block_out_channels=(cfg.channels,) * (ups + 1),
        num_encoder_blocks=(1,) * (ups + 1),
        num_decoder_blocks=(2,) + (1,) * ups,
        scaling_factor=vae.config.scaling_factor,
    )
    cache = LatentCache(vae, cfg.num_train_images, cfg.seed)
    images = cache.dataset.batch(range(len(cache)))["pixel_values"]  # (N, 3, R, R) in [-1, 1]

    decoder.encoder.requires_grad_(False)  # only the decoder trains (and DDP expects every gradient)
    optimizer = torch.optim.AdamW(decoder.decoder.parameters(), lr=cfg.learning_rate, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, cfg.max_train_steps)
    step_fn, optimizer, sched = accelerator.prepare(TrainStep(decoder), optimizer, sched)
    start = resume(accelerator, out)
    bar = progress(accelerator, cfg.max_train_steps, start, "train tiny-decoder")
    for step in range(start, cfg.max_train_steps):
        latents, idx, _ = cache.batch(cfg.seed, accelerator.process_index, step, cfg.batch_size, 0.0)
        target = images[idx].to(device)
        pred = step_fn(lambda d, z: d.decode(z).sample, latents.to(device) / vae.config.scaling_factor)
        loss = F.mse_loss(pred, target) + 0.1 * F.l1_loss(pred, target)
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        optimizer.step()
        sched.step()
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if (step + 1) % cfg.checkpointing_steps == 0 or step + 1 == cfg.max_train_steps:
            save_checkpoint(accelerator, out, step + 1)
    bar.close()

    final = out / "model"
    if accelerator.is_main_process:
        with atomic_dir(final) as tmp:
            model = decoder.to(save_dtype(cfg.save_dtype))
            model.save_pretrained(tmp, safe_serialization=True)
    accelerator.end_training()
    return final
