"""``genkit distill --method dmd``: Distribution Matching Distillation (DMD2, Yin et al. 2024).

The student ``G`` starts as a copy of the teacher's denoiser and maps noise at the student's timesteps to
a clean sample. Each student update follows ``fake_updates`` updates (DMD2's two time-scale rule) of a
"fake" score, a second copy of the teacher trained with the ordinary denoising loss on the student's
samples, so that it tracks the student's distribution. The student's gradient is the difference of the
fake and the real (teacher, with guidance) clean-sample predictions at a noised student sample,
normalised per sample (``losses.dmd_loss``). Optional: DMD2's GAN (a small head on the fake score's
bottleneck features, real data from genkit's procedural images), SNOOPI's random guidance scale, an MSE
regression to teacher samples from the same noise, backward simulation for 2-4-step students.

Everything random depends on (seed, step): prompts, timesteps and backward-simulation depths are drawn
from ``step_rng``; noise from torch's RNG, which accelerate checkpoints. A run resumes from its newest
checkpoint with the same ``--out``.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import torch
from torch import nn

from genkit.distill.losses import (
    dmd_loss,
    fake_score_loss,
    gan_discriminator_loss,
    gan_generator_loss,
    regression_loss,
)
from genkit.distill.teacher import (
    DistillConfig,
    Teacher,
    build_fake_score,
    draw,
    finish,
    load_prompts,
    noise_like,
    step_rng,
    student_ema,
    student_sample,
    student_update,
)
from genkit.pipelines.one_step import student_timesteps
from genkit.training.loop import make_accelerator, progress, resume, save_checkpoint
from genkit.utils import GenkitError

GAN_REAL_IMAGES = 4000  # procedural images whose latents are the GAN's real data


class BottleneckDiscriminator(nn.Module):
    """DMD2's GAN head: conv 4x4 stride 2, GroupNorm, SiLU, conv 1x1 to one logit per position (averaged)
    on the fake UNet's mid-block output, captured with a forward hook."""

    def __init__(self, channels: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, channels, 4, stride=2, padding=1),
            nn.GroupNorm(min(32, channels), channels),
            nn.SiLU(),
            nn.Conv2d(channels, 1, 1),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features.float()).mean(dim=(1, 2, 3))


def train_dmd(cfg: DistillConfig) -> Path:
    out = Path(cfg.out)
    accelerator = make_accelerator(out, cfg.seed, cfg.mixed_precision)
    device = accelerator.device
    fake_updates = cfg.fake_updates or 5

    # --- teacher (real score), student, fake score ---------------------------------------------------
    teacher = Teacher(cfg.teacher, device=device)
    student = copy.deepcopy(teacher.denoiser).requires_grad_(True).train()
    fake, real_score = build_fake_score(teacher, cfg.fake_score or "copy", cfg.lora_rank)
    timesteps = student_timesteps(cfg.steps_student, teacher.num_train_timesteps)
    prompts = load_prompts(cfg.prompts)
    null_states = teacher.encode([""]).expand(cfg.batch_size, -1, -1)

    disc, feats, real_latents = None, {}, None
    if cfg.gan_weight > 0:
        if not hasattr(fake, "mid_block"):
            raise GenkitError("the GAN head needs a UNet teacher (a mid block to read features from)")
        fake.mid_block.register_forward_hook(lambda m, i, o: feats.__setitem__("mid", o))
        disc = BottleneckDiscriminator(fake.config.block_out_channels[-1]).to(device)
        from genkit.training.latents import LatentCache

        real_latents = LatentCache(teacher.pipe.vae, GAN_REAL_IMAGES, cfg.seed)

    regression = None
    if cfg.regression_weight > 0:
        regression = teacher_pairs(teacher, prompts, cfg, timesteps)

    # --- optimisation --------------------------------------------------------------------------------
    fake_params = [p for p in fake.parameters() if p.requires_grad] + (
        list(disc.parameters()) if disc else []
    )
    opt_g = torch.optim.AdamW(student.parameters(), lr=cfg.learning_rate, weight_decay=1e-2)
    opt_f = torch.optim.AdamW(fake_params, lr=cfg.fake_lr(cfg.fake_score or "copy"), weight_decay=1e-2)
    student, fake, opt_g, opt_f = accelerator.prepare(student, fake, opt_g, opt_f)
    if disc is not None:
        disc = accelerator.prepare(disc)
    ema = student_ema(accelerator, student, cfg.ema_decay)
    start = resume(accelerator, out, states={"ema": ema})

    bar = progress(accelerator, cfg.max_train_steps, start, "distill dmd")
    t0 = time.perf_counter()
    for step in range(start, cfg.max_train_steps):
        # 1) fake score: denoising loss on fresh student samples (+ the GAN discriminator)
        for k in range(fake_updates):
            batch, _, t_fake, _, depth = draw(cfg, prompts, step, k + 1, device, teacher.num_train_timesteps)
            states = teacher.encode(batch)
            with torch.no_grad(), accelerator.autocast():
                x = student_sample(
                    teacher, student, states, timesteps, depth, noise_like(teacher, cfg, device)
                )[0]
            noise = torch.randn_like(x)
            with accelerator.autocast():
                pred = fake(teacher.add_noise(x, noise, t_fake), t_fake, states).sample
                loss_fake = fake_score_loss(pred, teacher.target(x, noise, t_fake))
                if disc is not None:
                    logits_fake = disc(feats["mid"])
                    real, idx, _ = real_latents.batch(
                        cfg.seed, accelerator.process_index, step * 64 + k, cfg.batch_size, 0.0
                    )
                    real = real.to(device)
                    real_states = teacher.encode([real_latents.captions[i] for i in idx])
                    fake(teacher.add_noise(real, torch.randn_like(real), t_fake), t_fake, real_states)
                    loss_fake = loss_fake + cfg.gan_disc_weight * gan_discriminator_loss(
                        disc(feats["mid"]), logits_fake
                    )
            opt_f.zero_grad(set_to_none=True)
            accelerator.backward(loss_fake)
            accelerator.clip_grad_norm_(fake_params, 10.0)
            opt_f.step()

        # 2) student: distribution matching (+ GAN, + regression)
        batch, t_dist, t_gan, guidance, depth = draw(
            cfg, prompts, step, 0, device, teacher.num_train_timesteps
        )
        states = teacher.encode(batch)
        with accelerator.autocast():
            x = student_sample(teacher, student, states, timesteps, depth, noise_like(teacher, cfg, device))[
                0
            ]
            x_t = teacher.add_noise(x.detach(), torch.randn_like(x), t_dist)
            with torch.no_grad():
                with real_score():
                    x0_real = teacher.guided(
                        teacher.x0, teacher.denoiser, x_t, t_dist, states, null_states, guidance
                    )
                x0_fake = teacher.x0(fake, x_t, t_dist, states)
            loss_dm = dmd_loss(x, x0_real, x0_fake)
            loss = loss_dm
            if disc is not None:
                fake(
                    teacher.add_noise(x, torch.randn_like(x), t_gan), t_gan, states
                )  # graph to x, not stepped
                loss = loss + cfg.gan_weight * gan_generator_loss(disc(feats["mid"]))
            if regression is not None and depth == 0:
                noise, target, idx = regression(step)
                x_reg = student_sample(
                    teacher, student, teacher.encode([prompts[i] for i in idx]), timesteps, 0, noise
                )[0]
                loss = loss + cfg.regression_weight * regression_loss(x_reg, target)
        student_update(accelerator, opt_g, student, ema, loss)

        bar.update(1)
        bar.set_postfix(dm=f"{loss_dm.item():.2e}", fake=f"{loss_fake.item():.4f}")
        if (step + 1) % cfg.checkpointing_steps == 0 or step + 1 == cfg.max_train_steps:
            save_checkpoint(accelerator, out, step + 1, states={"ema": ema})
    bar.close()

    # --- export: EMA weights as a OneStepPipeline ----------------------------------------------------
    done = {"method": "dmd", "fake_updates": fake_updates, "steps_this_run": cfg.max_train_steps - start}
    return finish(accelerator, teacher, student, ema, timesteps, cfg, done, t0)


def teacher_pairs(teacher: Teacher, prompts: list[str], cfg: DistillConfig, timesteps: list[int]):
    """A fixed set of (noise, teacher latent) pairs from the teacher's own pipeline (``regression_steps``
    steps, guidance ``cfg.guidance``), made once; returns ``draw(step) -> (noise, target, prompt idx)``."""
    if timesteps[0] != teacher.num_train_timesteps - 1:
        raise GenkitError("the regression loss needs a student that starts at the last timestep")
    n = 8 * cfg.batch_size
    g = torch.Generator().manual_seed(cfg.seed + 1)
    idx = torch.randint(0, len(prompts), (n,), generator=g)
    noise = torch.randn((n, *teacher.latent_shape), generator=g)
    targets = []
    for i in range(0, n, cfg.batch_size):
        with torch.no_grad():
            targets.append(
                teacher.pipe(
                    [prompts[j] for j in idx[i : i + cfg.batch_size]],
                    num_inference_steps=cfg.regression_steps,
                    guidance_scale=cfg.guidance,
                    latents=noise[i : i + cfg.batch_size].to(teacher.pipe.device),
                    output_type="latent",
                ).images
            )
    target = torch.cat(targets)

    def draw_pairs(step: int):
        sel = torch.as_tensor(step_rng(cfg.seed, step, 99).integers(0, n, cfg.batch_size))
        dev = target.device
        return noise[sel].to(dev), target[sel], idx[sel].tolist()

    return draw_pairs
