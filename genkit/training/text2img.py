"""``genkit train text2img``: the denoiser (UNet2DConditionModel) and the text encoder, jointly.

Stable Diffusion's recipe at toy scale: a frozen VAE (``genkit train vae``) maps images to latents, a
word-level tokenizer (``genkit train tokenizer``) and a small CLIP text encoder give cross-attention
states, and the UNet learns v-prediction on a zero-terminal-SNR schedule (see ``models/presets.py``). Captions are dropped with
probability ``caption_dropout`` (replaced by the empty prompt, as diffusers' pipeline encodes it), which
is what classifier-free guidance needs. The text encoder is trained with the UNet (SD freezes a
pretrained CLIP; genkit has none to start from).

Latents of a fixed, seeded set of training images are computed once (``LatentCache``: the posterior mean
and std, so each step still draws a fresh sample), as diffusers' training examples do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler, DPMSolverMultistepScheduler, UNet2DConditionModel
from diffusers.optimization import get_cosine_schedule_with_warmup
from diffusers.training_utils import EMAModel, compute_snr
from transformers import AutoTokenizer

from genkit.models.presets import SCHEDULER_CONFIG, TEXT_ENCODER_PRESETS, UNET_PRESETS
from genkit.models.text import build_text_encoder, tokenize
from genkit.pipelines.text2img import build_text2img_pipeline
from genkit.training.latents import LatentCache, LatentTrainConfig, diffusion_target, save_pipeline
from genkit.training.loop import make_accelerator, progress, resume, save_checkpoint
from genkit.utils import GenkitError, reading


@dataclass
class Text2ImgTrainConfig(LatentTrainConfig):
    vae: str = field(default="runs/vae/model", metadata={"help": "trained VAE folder (genkit train vae)"})
    tokenizer: str = field(
        default="runs/tokenizer", metadata={"help": "tokenizer folder (genkit train tokenizer)"}
    )
    out: str = field(
        default="runs/text2img", metadata={"help": "run folder: checkpoints/ and the final pipeline model/"}
    )
    unet_preset: str = field(
        default="unet-shapes-s", metadata={"help": "UNet preset", "choices": list(UNET_PRESETS)}
    )
    text_encoder_preset: str = field(
        default="clip-text-shapes",
        metadata={"help": "text encoder preset", "choices": list(TEXT_ENCODER_PRESETS)},
    )
    snr_gamma: float = field(
        default=0.0,
        metadata={
            "help": "min-SNR loss weighting gamma (0 disables; it down-weights the high-noise steps that decide layout)"
        },
    )


def build_unet(preset: str, vae: AutoencoderKL, text_dim: int) -> UNet2DConditionModel:
    """A UNet preset sized for ``vae``'s latents (side and channels) and a text encoder of width ``text_dim``."""
    return UNet2DConditionModel(
        **{
            **UNET_PRESETS[preset],
            "cross_attention_dim": text_dim,
            "sample_size": vae.config.sample_size // 2 ** (len(vae.config.block_out_channels) - 1),
            "in_channels": vae.config.latent_channels,
            "out_channels": vae.config.latent_channels,
        }
    )


def train_text2img(cfg: Text2ImgTrainConfig) -> Path:
    out = Path(cfg.out)
    for p, what in ((cfg.vae, "VAE"), (cfg.tokenizer, "tokenizer")):
        if not Path(p).is_dir():
            raise GenkitError(f"{what} folder {p!r} not found (train it first, see README)")
    accelerator = make_accelerator(out, cfg.seed, cfg.mixed_precision, cfg.device)
    device = accelerator.device

    # --- components --------------------------------------------------------------------------------
    with reading(f"could not load the VAE from {cfg.vae!r}"):  # not a VAE folder, or a broken one
        vae = AutoencoderKL.from_pretrained(cfg.vae).to(device).eval().requires_grad_(False)
    with reading(f"could not load the tokenizer from {cfg.tokenizer!r}"):
        tokenizer = AutoTokenizer.from_pretrained(cfg.tokenizer)
    text_encoder = build_text_encoder(tokenizer, cfg.text_encoder_preset)
    unet = build_unet(cfg.unet_preset, vae, text_encoder.config.hidden_size)
    noise_scheduler = DDPMScheduler(**SCHEDULER_CONFIG)

    # --- data: a latent cache of a seeded image set --------------------------------------------------
    cache = LatentCache(vae, cfg.num_train_images, cfg.seed)
    input_ids, empty_ids = tokenize(tokenizer, cache.captions), tokenize(tokenizer, [""])

    # --- optimisation ------------------------------------------------------------------------------
    params = list(unet.parameters()) + list(text_encoder.parameters())
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=1e-2)
    lr_sched = get_cosine_schedule_with_warmup(optimizer, cfg.lr_warmup_steps, cfg.max_train_steps)
    unet, text_encoder, optimizer, lr_sched = accelerator.prepare(unet, text_encoder, optimizer, lr_sched)
    ema_params = list(accelerator.unwrap_model(unet).parameters()) + list(
        accelerator.unwrap_model(text_encoder).parameters()
    )
    ema = EMAModel(ema_params, decay=cfg.ema_decay, use_ema_warmup=True, power=2 / 3)
    ema.to(device)
    start = resume(accelerator, out, states={"ema": ema})

    bar = progress(accelerator, cfg.max_train_steps, start, "train text2img")
    for step in range(start, cfg.max_train_steps):
        latents, idx, drop = cache.batch(
            cfg.seed, accelerator.process_index, step, cfg.batch_size, cfg.caption_dropout
        )
        latents = latents.to(device)
        ids = torch.where(drop[:, None], empty_ids, input_ids[idx]).to(device)
        noise = torch.randn_like(latents)
        timesteps = torch.randint(
            0, noise_scheduler.config.num_train_timesteps, (cfg.batch_size,), device=device
        )
        noisy = noise_scheduler.add_noise(latents, noise, timesteps)

        with accelerator.accumulate(unet, text_encoder):
            states = text_encoder(ids)[0]
            pred = unet(noisy, timesteps, states).sample
            target = diffusion_target(noise_scheduler, latents, noise, timesteps)
            loss = F.mse_loss(pred.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))
            if cfg.snr_gamma > 0:  # min-SNR weighting (Hang et al. 2023)
                snr = compute_snr(noise_scheduler, timesteps)
                w = torch.clamp(snr, max=cfg.snr_gamma)
                loss = loss * (
                    w / snr if noise_scheduler.config.prediction_type == "epsilon" else w / (snr + 1)
                )
            loss = loss.mean()
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(params, 1.0)
            optimizer.step()
            lr_sched.step()
            optimizer.zero_grad(set_to_none=True)
        ema.step(ema_params)
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{lr_sched.get_last_lr()[0]:.1e}")
        if (step + 1) % cfg.checkpointing_steps == 0 or step + 1 == cfg.max_train_steps:
            save_checkpoint(accelerator, out, step + 1, states={"ema": ema})
    bar.close()

    # --- export: EMA weights as a Stable Diffusion pipeline -------------------------------------------
    ema.copy_to(ema_params)
    pipe = build_text2img_pipeline(
        vae=vae,
        text_encoder=accelerator.unwrap_model(text_encoder).eval(),
        tokenizer=tokenizer,
        unet=accelerator.unwrap_model(unet).eval(),
        scheduler=DPMSolverMultistepScheduler.from_config(noise_scheduler.config),
    )
    final = out / "model"
    if accelerator.is_main_process:
        save_pipeline(pipe, final, cfg.save_dtype)
    accelerator.end_training()
    return final
