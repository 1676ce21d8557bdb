"""``genkit distill --method vsd``: Variational Score Distillation, image-free (SwiftBrush, Nguyen & Tran 2024).

The student starts as a copy of the teacher's denoiser and maps noise to a clean sample. The fake score is
by default a LoRA on the teacher's own denoiser (``disable_adapters()`` gives back the teacher, so one set
of weights serves both), trained with the denoising loss on the student's samples and 10% empty prompts
(so it has an unconditional branch). Student and fake score alternate 1:1. The student's gradient is
``sigma_t^2 (eps_real^w - eps_fake^w)``, with guidance ``w`` on both scores (``losses.vsd_loss``);
SNOOPI's random guidance scale (``--guidance-max``) draws ``w`` per sample, the same for both.

Randomness depends on (seed, step), as in ``distill/dmd.py``; runs resume from their newest checkpoint.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import torch

from genkit.distill.losses import fake_score_loss, vsd_loss
from genkit.distill.teacher import (
    DistillConfig,
    Teacher,
    build_fake_score,
    draw,
    finish,
    load_prompts,
    noise_like,
    student_ema,
    student_sample,
    student_update,
)
from genkit.pipelines.one_step import student_timesteps
from genkit.training.loop import make_accelerator, progress, resume, save_checkpoint
from genkit.utils import GenkitError

FAKE_CAPTION_DROPOUT = 0.1


def train_vsd(cfg: DistillConfig) -> Path:
    if cfg.gan_weight > 0 or cfg.regression_weight > 0:
        raise GenkitError("--gan-weight and --regression-weight are DMD options (use --method dmd)")
    out = Path(cfg.out)
    accelerator = make_accelerator(out, cfg.seed, cfg.mixed_precision)
    device = accelerator.device
    fake_updates = cfg.fake_updates or 1

    # --- teacher (real score), student, fake score ---------------------------------------------------
    teacher = Teacher(cfg.teacher, device=device)
    student = copy.deepcopy(teacher.denoiser).requires_grad_(True).train()
    fake, real_score = build_fake_score(teacher, cfg.fake_score or "lora", cfg.lora_rank)
    timesteps = student_timesteps(cfg.steps_student, teacher.num_train_timesteps)
    prompts = load_prompts(cfg.prompts)
    null_states = teacher.encode([""]).expand(cfg.batch_size, -1, -1)

    # --- optimisation --------------------------------------------------------------------------------
    fake_params = [p for p in fake.parameters() if p.requires_grad]
    opt_g = torch.optim.AdamW(student.parameters(), lr=cfg.learning_rate, weight_decay=1e-2)
    opt_f = torch.optim.AdamW(fake_params, lr=cfg.fake_lr(cfg.fake_score or "lora"), weight_decay=1e-2)
    student, fake, opt_g, opt_f = accelerator.prepare(student, fake, opt_g, opt_f)
    ema = student_ema(accelerator, student, cfg.ema_decay)
    start = resume(accelerator, out, states={"ema": ema})

    bar = progress(accelerator, cfg.max_train_steps, start, "distill vsd")
    t0 = time.perf_counter()
    for step in range(start, cfg.max_train_steps):
        # 1) fake score: denoising loss on fresh student samples, some prompts dropped
        for k in range(fake_updates):
            batch, _, t_fake, _, depth = draw(cfg, prompts, step, k + 1, device, teacher.num_train_timesteps)
            states = teacher.encode(batch)
            with torch.no_grad(), accelerator.autocast():
                x = student_sample(
                    teacher, student, states, timesteps, depth, noise_like(teacher, cfg, device)
                )[0]
            drop = torch.rand(cfg.batch_size, device=device) < FAKE_CAPTION_DROPOUT
            states = torch.where(drop[:, None, None], null_states, states)
            noise = torch.randn_like(x)
            with accelerator.autocast():
                pred = fake(teacher.add_noise(x, noise, t_fake), t_fake, states).sample
                loss_fake = fake_score_loss(pred, teacher.target(x, noise, t_fake))
            opt_f.zero_grad(set_to_none=True)
            accelerator.backward(loss_fake)
            accelerator.clip_grad_norm_(fake_params, 10.0)
            opt_f.step()

        # 2) student: variational score distillation
        batch, t_dist, _, guidance, depth = draw(cfg, prompts, step, 0, device, teacher.num_train_timesteps)
        states = teacher.encode(batch)
        with accelerator.autocast():
            x = student_sample(teacher, student, states, timesteps, depth, noise_like(teacher, cfg, device))[
                0
            ]
            x_t = teacher.add_noise(x.detach(), torch.randn_like(x), t_dist)
            with torch.no_grad():
                with real_score():
                    eps_real = teacher.guided(
                        teacher.eps, teacher.denoiser, x_t, t_dist, states, null_states, guidance
                    )
                eps_fake = teacher.guided(teacher.eps, fake, x_t, t_dist, states, null_states, guidance)
            sigma = teacher.alpha_sigma(t_dist, x.ndim)[1]
            loss = vsd_loss(x, eps_real, eps_fake, sigma**2)
        student_update(accelerator, opt_g, student, ema, loss)

        bar.update(1)
        bar.set_postfix(vsd=f"{loss.item():.2e}", fake=f"{loss_fake.item():.4f}")
        if (step + 1) % cfg.checkpointing_steps == 0 or step + 1 == cfg.max_train_steps:
            save_checkpoint(accelerator, out, step + 1, states={"ema": ema})
    bar.close()

    # --- export: EMA weights as a OneStepPipeline ----------------------------------------------------
    done = {"method": "vsd", "fake_updates": fake_updates, "steps_this_run": cfg.max_train_steps - start}
    return finish(accelerator, teacher, student, ema, timesteps, cfg, done, t0)
