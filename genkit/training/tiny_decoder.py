"""``genkit train tiny-decoder``: a small decoder for a pipeline's latents, so that one-step students are not
held back by the VAE decode.

The decoder is a diffusers ``AutoencoderKL`` with a quarter of the channels of genkit's KL VAE (``--channels``
16: blocks of 16 and 32), trained to do what the pipeline's KL decoder does (as TAESD is trained against
the Stable Diffusion decoder), with MSE + L1, on the latents it will decode: half of each batch posterior
samples of a seeded set of procedural images, half latents the pipeline itself generates (``--generated``
of them, once, with its own scheduler at 25 steps and guidance 4 for the training captions), which are
noisier than encoded images. The structure matters more than the size: its mid block's self-attention gives every
pixel the whole image's context, so a generator's background latent, which is noisier than an encoded
image's, decodes to one even tone as the KL decoder gives it; a purely convolutional ``AutoencoderTiny``
(the TAESD structure) decides each region on its own and paints patches of two greys
(``--arch tiny``; ``bench/distill.py`` measures both). Its ``scaling_factor`` is the KL VAE's, so
``vae.decode(latents / vae.config.scaling_factor)`` works unchanged in any pipeline; the encoder half is
left untrained (only decoding is needed). ``genkit distill --decoder RUN/model`` ships it with a student.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, AutoencoderTiny

from genkit.loading import load_pipeline, resolve_model
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
    arch: str = field(
        default="kl",
        metadata={
            "help": "kl: a small AutoencoderKL (mid-block attention); tiny: diffusers' AutoencoderTiny",
            "choices": ["kl", "tiny"],
        },
    )
    channels: int = field(
        default=16, metadata={"help": "width of the first block (kl: the next twice as wide)"}
    )
    max_train_steps: int = field(default=4000, metadata={"help": "optimizer steps"})
    batch_size: int = field(default=64, metadata={"help": "latents per step"})
    learning_rate: float = field(default=2e-3, metadata={"help": "AdamW learning rate (cosine decay)"})
    num_train_images: int = field(default=10000, metadata={"help": "seeded training images (latents cached)"})
    generated: int = field(
        default=1600,
        metadata={
            "help": "latents the pipeline generates for half of each batch (0: posterior samples only)"
        },
    )
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
        if self.generated < 0:
            raise GenkitError("--generated must be non-negative")
        if self.channels % 8:
            raise GenkitError("--channels must be a multiple of 8 (the group norm's groups)")


def build_decoder(cfg: TinyDecoderTrainConfig, vae: AutoencoderKL):
    """The untrained decoder of ``cfg.arch`` for latents of ``vae`` (same latent channels, upsampling and
    scaling factor)."""
    ups = len(vae.config.block_out_channels) - 1  # the KL VAE's downsampling: as many upsamplings
    if cfg.arch == "tiny":
        return AutoencoderTiny(
            latent_channels=vae.config.latent_channels,
            encoder_block_out_channels=(cfg.channels,) * (ups + 1),
            decoder_block_out_channels=(cfg.channels,) * (ups + 1),
            num_encoder_blocks=(1,) * (ups + 1),
            num_decoder_blocks=(2,) + (1,) * ups,
            scaling_factor=vae.config.scaling_factor,
        )
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * (ups + 1),
        up_block_types=("UpDecoderBlock2D",) * (ups + 1),
        block_out_channels=tuple(cfg.channels * 2**i for i in range(ups + 1)),
        layers_per_block=1,
        latent_channels=vae.config.latent_channels,
        norm_num_groups=8,
        sample_size=vae.config.sample_size,
        scaling_factor=vae.config.scaling_factor,
    )


@torch.no_grad()
def generated_latents(pipe, n: int, seed: int, batch_size: int = 80) -> torch.Tensor:
    """``n`` latents (scaled, as the pipeline's denoiser makes them) of ``pipe`` for the training captions
    in turn, at its default steps (25; a distilled student: its own) and guidance 4, latent ``i`` from seed
    ``seed * 100000 + i``."""
    from tqdm.auto import tqdm

    from genkit.data.shapes import prompt_set
    from genkit.generate import sampling_steps

    prompts, steps = prompt_set("train"), sampling_steps(pipe, None, "")
    out = []
    for i in tqdm(range(0, n, batch_size), desc="generate latents", unit="batch"):
        idx = range(i, min(i + batch_size, n))
        gens = [torch.Generator().manual_seed(seed * 100000 + j) for j in idx]
        out.append(
            pipe(
                [prompts[j % len(prompts)] for j in idx],
                num_inference_steps=steps,
                guidance_scale=4.0,
                generator=gens,
                output_type="latent",
            )
            .images.float()
            .cpu()
        )
    return torch.cat(out)


def train_tiny_decoder(cfg: TinyDecoderTrainConfig) -> Path:
    out = Path(cfg.out)
    pipe = load_pipeline(resolve_model(cfg.vae_from), "dpm")  # a bad folder fails before the run folder
    accelerator = make_accelerator(out, cfg.seed, device=cfg.device)
    device = accelerator.device
    vae = pipe.vae.to(device).eval().requires_grad_(False)
    decoder = build_decoder(cfg, vae)
    cache = LatentCache(vae, cfg.num_train_images, cfg.seed)
    generated = generated_latents(pipe.to(device), cfg.generated, cfg.seed) if cfg.generated else None
    scale = vae.config.scaling_factor

    # only the decoding half trains (and DDP expects a gradient for every trainable parameter)
    decoder.requires_grad_(False)
    decoding = [decoder.decoder] + ([decoder.post_quant_conv] if cfg.arch == "kl" else [])
    trained = [p for m in decoding for p in m.parameters()]
    for p in trained:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(trained, lr=cfg.learning_rate, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, cfg.max_train_steps)
    step_fn, optimizer, sched = accelerator.prepare(TrainStep(decoder), optimizer, sched)
    start = resume(accelerator, out)
    bar = progress(accelerator, cfg.max_train_steps, start, "train tiny-decoder")
    for step in range(start, cfg.max_train_steps):
        latents = cache.batch(cfg.seed, accelerator.process_index, step, cfg.batch_size, 0.0)[0]
        if generated is not None:  # the second half of the batch: generated latents
            pick = np.random.default_rng([cfg.seed, 13, accelerator.process_index, step])
            half = cfg.batch_size // 2
            latents[half:] = generated[
                torch.as_tensor(pick.integers(0, len(generated), cfg.batch_size - half))
            ]
        latents = latents.to(device) / scale
        with torch.no_grad():
            target = vae.decode(latents).sample
        pred = step_fn(lambda d, z: d.decode(z).sample, latents)
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
