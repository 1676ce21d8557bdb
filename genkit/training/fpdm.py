"""``genkit train fpdm``: an FPDM transformer (or its DiT baseline) on the shapes latents.

The VAE, text encoder and tokenizer come frozen from a Stable Diffusion folder (default: the bundled
``text2img-shapes``), so FPDM and DiT see the same latents and prompts as the foundation model.

Backprop through the fixed point (``--backprop``):
- ``sjfb`` (default): stochastic Jacobian-free backprop. Each step draws ``n_no_grad`` in
  [no_grad_min, no_grad_max] iterations run under real ``torch.no_grad()`` and ``n_grad`` in
  [grad_min, grad_max] iterations that record a graph. The draw depends only on (seed, step), so every
  process of a multi-GPU run uses the same counts, and a resumed run the same ones it would have used.
- ``jfb``: the same draw of the total, one graph-recording iteration.
- ``full``: backprop through every iteration (the memory-hungry reference point).
``--arch dit`` trains the baseline (``depth`` explicit blocks, same width and conditioning) through the
same loop, data and optimiser.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, DPMSolverMultistepScheduler
from diffusers.optimization import get_cosine_schedule_with_warmup
from diffusers.training_utils import EMAModel

from genkit.loading import load_pipeline
from genkit.models.presets import SCHEDULER_CONFIG
from genkit.models.text import tokenize
from genkit.models.transformer_dit import TextDiT2DModel
from genkit.models.transformer_fpdm import FPDMTransformer2DModel
from genkit.pipelines.fpdm import FPDMPipeline
from genkit.training.latents import LatentCache, LatentTrainConfig, diffusion_target, save_pipeline
from genkit.training.loop import make_accelerator, progress, resume, save_checkpoint
from genkit.utils import GenkitError


@dataclass
class FPDMTrainConfig(LatentTrainConfig):
    base: str = field(
        default="text2img-shapes",
        metadata={"help": "bundled name or SD folder giving the frozen VAE, text encoder, tokenizer"},
    )
    out: str = field(
        default="runs/fpdm", metadata={"help": "run folder: checkpoints/ and the final pipeline model/"}
    )
    arch: str = field(default="fpdm", metadata={"help": "model to train", "choices": ["fpdm", "dit"]})
    hidden_size: int = field(default=128, metadata={"help": "transformer width"})
    num_attention_heads: int = field(default=4, metadata={"help": "attention heads"})
    patch_size: int = field(default=2, metadata={"help": "latent patch size"})
    head_channels: int = field(
        default=0, metadata={"help": "channels of a 3x3 convolutional output head (0: a linear head)"}
    )
    pre_depth: int = field(default=1, metadata={"help": "FPDM: explicit blocks before the implicit layer"})
    post_depth: int = field(default=1, metadata={"help": "FPDM: explicit blocks after the implicit layer"})
    sample_iterations: int = field(
        default=12, metadata={"help": "FPDM: default iterations per call at sampling"}
    )
    depth: int = field(
        default=14,
        metadata={"help": "DiT: number of blocks (default: FPDM's 1 + 12 + 1 evaluations per step)"},
    )
    backprop: str = field(
        default="sjfb",
        metadata={"help": "gradient through the fixed point", "choices": ["sjfb", "jfb", "full"]},
    )
    no_grad_min: int = field(default=0, metadata={"help": "S-JFB: fewest no-grad iterations per step"})
    no_grad_max: int = field(default=8, metadata={"help": "S-JFB: most no-grad iterations per step"})
    grad_min: int = field(default=1, metadata={"help": "S-JFB: fewest graph-recording iterations per step"})
    grad_max: int = field(default=3, metadata={"help": "S-JFB: most graph-recording iterations per step"})
    learning_rate: float = field(default=3e-4, metadata={"help": "AdamW peak learning rate"})

    def __post_init__(self):
        super().__post_init__()
        if self.depth <= 0:
            raise GenkitError("depth must be positive")
        if not (0 <= self.no_grad_min <= self.no_grad_max and 1 <= self.grad_min <= self.grad_max):
            raise GenkitError("need 0 <= no-grad-min <= no-grad-max and 1 <= grad-min <= grad-max")


def iteration_counts(cfg: FPDMTrainConfig, step: int) -> tuple[int, int | None]:
    """(total iterations, graph-recording iterations or None for all) of one training step."""
    rng = np.random.default_rng([cfg.seed, 5, step])  # no process index: identical on every process
    n_free = int(rng.integers(cfg.no_grad_min, cfg.no_grad_max + 1))
    n_grad = int(rng.integers(cfg.grad_min, cfg.grad_max + 1))
    if cfg.backprop == "full":
        return n_free + n_grad, None
    if cfg.backprop == "jfb":
        return n_free + n_grad, 1
    return n_free + n_grad, n_grad


def build_model(cfg: FPDMTrainConfig, latent_channels: int, latent_side: int, text_dim: int):
    common = dict(
        sample_size=latent_side,
        patch_size=cfg.patch_size,
        in_channels=latent_channels,
        hidden_size=cfg.hidden_size,
        num_attention_heads=cfg.num_attention_heads,
        cross_attention_dim=text_dim,
        head_channels=cfg.head_channels,
    )
    if cfg.arch == "dit":
        return TextDiT2DModel(depth=cfg.depth, **common)
    return FPDMTransformer2DModel(
        pre_depth=cfg.pre_depth, post_depth=cfg.post_depth, num_iterations=cfg.sample_iterations, **common
    )


def train_fpdm(cfg: FPDMTrainConfig) -> Path:
    out = Path(cfg.out)
    base = load_pipeline(cfg.base, scheduler=None, device="cpu")
    accelerator = make_accelerator(out, cfg.seed, cfg.mixed_precision, cfg.device)
    device = accelerator.device
    vae = base.vae.to(device).eval().requires_grad_(False)
    text_encoder = base.text_encoder.to(device).eval().requires_grad_(False)
    tokenizer = base.tokenizer
    latent_side = vae.config.sample_size // 2 ** (len(vae.config.block_out_channels) - 1)
    model = build_model(cfg, vae.config.latent_channels, latent_side, text_encoder.config.hidden_size)
    noise_scheduler = DDPMScheduler(**SCHEDULER_CONFIG)

    # --- data: latent cache and frozen text states of every distinct caption ------------------------
    cache = LatentCache(vae, cfg.num_train_images, cfg.seed)
    vocab = sorted(set(cache.captions)) + [""]
    caption_index = torch.tensor([vocab.index(c) for c in cache.captions])
    with torch.no_grad():
        ids = tokenize(tokenizer, vocab)
        states = text_encoder(ids.to(device))[0]
    empty = len(vocab) - 1

    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=0.0)
    lr_sched = get_cosine_schedule_with_warmup(optimizer, cfg.lr_warmup_steps, cfg.max_train_steps)
    model, optimizer, lr_sched = accelerator.prepare(model, optimizer, lr_sched)
    ema = EMAModel(
        accelerator.unwrap_model(model).parameters(), decay=cfg.ema_decay, use_ema_warmup=True, power=2 / 3
    )
    ema.to(device)
    start = resume(accelerator, out, states={"ema": ema})

    bar = progress(accelerator, cfg.max_train_steps, start, f"train {cfg.arch}")
    for step in range(start, cfg.max_train_steps):
        latents, idx, drop = cache.batch(
            cfg.seed, accelerator.process_index, step, cfg.batch_size, cfg.caption_dropout
        )
        latents = latents.to(device)
        ctx = states[torch.where(drop, empty, caption_index[idx]).to(device)]
        noise = torch.randn_like(latents)
        timesteps = torch.randint(
            0, noise_scheduler.config.num_train_timesteps, (cfg.batch_size,), device=device
        )
        noisy = noise_scheduler.add_noise(latents, noise, timesteps)
        n_total, n_grad = iteration_counts(cfg, step)

        with accelerator.accumulate(model):
            pred = model(noisy, timesteps, ctx, num_iterations=n_total, num_grad_iterations=n_grad).sample
            loss = F.mse_loss(
                pred.float(), diffusion_target(noise_scheduler, latents, noise, timesteps).float()
            )
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            lr_sched.step()
            optimizer.zero_grad(set_to_none=True)
        ema.step(accelerator.unwrap_model(model).parameters())
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}", iters=f"{n_total}/{n_grad or n_total}")
        if (step + 1) % cfg.checkpointing_steps == 0 or step + 1 == cfg.max_train_steps:
            save_checkpoint(accelerator, out, step + 1, states={"ema": ema})
    bar.close()

    transformer = accelerator.unwrap_model(model).eval()
    ema.copy_to(transformer.parameters())
    pipe = FPDMPipeline(
        transformer=transformer,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=DPMSolverMultistepScheduler.from_config(noise_scheduler.config),
    )
    final = out / "model"
    if accelerator.is_main_process:
        save_pipeline(pipe, final, cfg.save_dtype, training={"command": "genkit train fpdm", **asdict(cfg)})
    accelerator.end_training()
    return final
