"""The alternating loop that one-step distillation methods share, top to bottom.

Each student (generator) update follows ``fake_updates`` updates of a "fake" score, trained with the
ordinary denoising loss on fresh student samples so that it tracks the student's distribution. A method
(``distill/dmd.py``, ``distill/vsd.py``) is a plain object that supplies only what differs:

- ``fake_score`` / ``fake_updates``: its defaults (a full copy or a LoRA; updates per student update);
- ``setup(run)``: extra modules (DMD's GAN head), returning their trainable parameters, which train with
  the fake score; ``prepare(accelerator)`` hands them to accelerate;
- ``fake_conditioning(run, states)``: the fake score's text states (VSD drops some prompts);
- ``fake_extra_loss(run, step, k, t)``: added to the fake score's loss, or None (DMD's discriminator);
- ``student_loss(run, x, x_t, t, t_aux, states, guidance, depth, step)``: the student's loss at its sample
  ``x`` noised to ``x_t`` and the numbers for the progress bar.

Everything random depends on (seed, step): prompts, timesteps and backward-simulation depths are drawn
from ``step_rng``; noise from torch's RNG, which accelerate checkpoints. A run resumes from its newest
checkpoint with the same ``--out``; the student is exported as a ``OneStepPipeline`` from its EMA weights.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genkit.distill.config import DistillConfig, load_prompts
from genkit.distill.losses import fake_score_loss
from genkit.distill.teacher import Teacher, build_fake_score
from genkit.pipelines.one_step import student_timesteps
from genkit.training.loop import make_accelerator, progress, resume, save_checkpoint
from genkit.utils import atomic_file

__all__ = ["Distillation", "distill", "draw", "export_student", "step_rng", "student_sample"]


@dataclass
class Distillation:
    """The pieces of a run that a method's hooks read."""

    cfg: DistillConfig
    accelerator: Any
    teacher: Teacher
    student: torch.nn.Module
    fake: torch.nn.Module
    real_score: Any  # a context manager factory under which ``teacher.denoiser`` is the real score
    prompts: list[str]
    null_states: torch.Tensor
    timesteps: list[int]


def distill(cfg: DistillConfig, method) -> Path:
    """Distil ``cfg.teacher`` into a ``cfg.steps_student``-step student with ``method``; returns the folder
    of the exported ``OneStepPipeline`` (``OUT/model``)."""
    out = Path(cfg.out)
    prompts = load_prompts(cfg.prompts)
    Teacher.check(cfg.teacher)  # a bad prompt file or teacher fails before the run folder is made
    accelerator = make_accelerator(out, cfg.seed, cfg.mixed_precision, cfg.device)
    device = accelerator.device
    fake_kind = cfg.fake_score or method.fake_score
    fake_updates = cfg.fake_updates or method.fake_updates

    # --- teacher (real score), student, fake score ---------------------------------------------------
    teacher = Teacher(cfg.teacher, device=device)
    student = copy.deepcopy(teacher.denoiser).requires_grad_(True).train()
    fake, real_score = build_fake_score(teacher, fake_kind, cfg.lora_rank)
    timesteps = student_timesteps(cfg.steps_student, teacher.num_train_timesteps)
    null_states = teacher.encode([""]).expand(cfg.batch_size, -1, -1)
    run = Distillation(cfg, accelerator, teacher, student, fake, real_score, prompts, null_states, timesteps)
    extra_params = method.setup(run)

    # --- optimisation --------------------------------------------------------------------------------
    fake_params = [p for p in fake.parameters() if p.requires_grad] + extra_params
    opt_g = torch.optim.AdamW(student.parameters(), lr=cfg.learning_rate, weight_decay=1e-2)
    opt_f = torch.optim.AdamW(fake_params, lr=cfg.fake_lr(fake_kind), weight_decay=1e-2)
    student, fake, opt_g, opt_f = accelerator.prepare(student, fake, opt_g, opt_f)
    run.student, run.fake = student, fake
    method.prepare(accelerator)
    ema = student_ema(accelerator, student, cfg.ema_decay)
    start = resume(accelerator, out, states={"ema": ema})

    bar = progress(accelerator, cfg.max_train_steps, start, f"distill {method.name}")
    t0 = time.perf_counter()
    for step in range(start, cfg.max_train_steps):
        # 1) fake score: denoising loss on fresh student samples
        for k in range(fake_updates):
            batch, _, t_fake, _, depth = draw(cfg, prompts, step, k + 1, device, teacher.num_train_timesteps)
            states = teacher.encode(batch)
            with torch.no_grad(), accelerator.autocast():
                x = student_sample(
                    teacher, student, states, timesteps, depth, noise_like(teacher, cfg, device)
                )[0]
            states = method.fake_conditioning(run, states)
            noise = torch.randn_like(x)
            with accelerator.autocast():
                pred = fake(teacher.add_noise(x, noise, t_fake), t_fake, states).sample
                loss_fake = fake_score_loss(pred, teacher.target(x, noise, t_fake))
                extra = method.fake_extra_loss(run, step, k, t_fake)
                if extra is not None:
                    loss_fake = loss_fake + extra
            opt_f.zero_grad(set_to_none=True)
            accelerator.backward(loss_fake)
            accelerator.clip_grad_norm_(fake_params, 10.0)
            opt_f.step()

        # 2) student: the method's loss at a noised student sample
        batch, t_dist, t_aux, guidance, depth = draw(
            cfg, prompts, step, 0, device, teacher.num_train_timesteps
        )
        states = teacher.encode(batch)
        with accelerator.autocast():
            x = student_sample(teacher, student, states, timesteps, depth, noise_like(teacher, cfg, device))[
                0
            ]
            x_t = teacher.add_noise(x.detach(), torch.randn_like(x), t_dist)
            loss, logs = method.student_loss(run, x, x_t, t_dist, t_aux, states, guidance, depth, step)
        student_update(accelerator, opt_g, student, ema, loss)

        bar.update(1)
        bar.set_postfix(**logs, fake=f"{loss_fake.item():.4f}")
        if (step + 1) % cfg.checkpointing_steps == 0 or step + 1 == cfg.max_train_steps:
            save_checkpoint(accelerator, out, step + 1, states={"ema": ema})
    bar.close()

    # --- export: EMA weights as a OneStepPipeline ----------------------------------------------------
    done = {
        "method": method.name,
        "fake_updates": fake_updates,
        "steps_this_run": cfg.max_train_steps - start,
    }
    return finish(accelerator, teacher, student, ema, timesteps, cfg, done, t0)


def step_rng(seed: int, step: int, k: int = 0) -> np.random.Generator:
    """A generator that depends only on (seed, step, k): every process and a resumed run draw the same
    prompts' indices, timesteps' ranges and backward-simulation depths."""
    return np.random.default_rng([seed, 7, step, k])


def draw(cfg: DistillConfig, prompts: list[str], step: int, k: int, device, num_train_timesteps: int):
    """Prompts and (distillation, denoising) timesteps of update ``k`` of ``step``."""
    rng = step_rng(cfg.seed, step, k)
    batch = [prompts[i] for i in rng.integers(0, len(prompts), cfg.batch_size)]
    t_dist = torch.as_tensor(
        rng.integers(cfg.min_timestep, cfg.max_timestep + 1, cfg.batch_size), device=device
    )
    t_fake = torch.as_tensor(rng.integers(0, num_train_timesteps, cfg.batch_size), device=device)
    guidance = (
        torch.as_tensor(rng.uniform(cfg.guidance, cfg.guidance_max, cfg.batch_size), dtype=torch.float32)
        if cfg.guidance_max is not None
        else cfg.guidance
    )
    return batch, t_dist, t_fake, guidance, int(rng.integers(0, cfg.steps_student))


def noise_like(teacher: Teacher, cfg: DistillConfig, device) -> torch.Tensor:
    return torch.randn((cfg.batch_size, *teacher.latent_shape), device=device)


def student_sample(teacher: Teacher, student, states, timesteps: list[int], depth: int, noise: torch.Tensor):
    """DMD2's backward simulation: from pure noise at ``timesteps[0]`` (as ``OneStepPipeline`` starts), ``depth`` student steps without a
    graph (each clean estimate re-noised to the next timestep), then the student's clean estimate at
    ``timesteps[depth]`` with its graph. ``depth = 0`` is the one-step student. Returns (x, x_t, t) of the
    final call."""
    b = noise.shape[0]
    x_t = noise
    for i in range(depth):
        t = torch.full((b,), timesteps[i], device=noise.device, dtype=torch.long)
        with torch.no_grad():
            x0 = teacher.x0(student, x_t, t, states)
        t_next = torch.full((b,), timesteps[i + 1], device=noise.device, dtype=torch.long)
        x_t = teacher.add_noise(x0, torch.randn_like(x0), t_next)
    t = torch.full((b,), timesteps[depth], device=noise.device, dtype=torch.long)
    return teacher.x0(student, x_t, t, states), x_t, t


def student_ema(accelerator, student, decay: float):
    """EMA of the (prepared) student's weights (the loop checkpoints it: ``states={"ema": ema}``)."""
    from diffusers.training_utils import EMAModel

    ema = EMAModel(
        accelerator.unwrap_model(student).parameters(), decay=decay, use_ema_warmup=True, power=2 / 3
    )
    ema.to(accelerator.device)
    return ema


def student_update(accelerator, optimizer, student, ema, loss: torch.Tensor) -> None:
    """One student (generator) step: backward, clip the gradient norm at 10, step, update the EMA."""
    optimizer.zero_grad(set_to_none=True)
    accelerator.backward(loss)
    accelerator.clip_grad_norm_(student.parameters(), 10.0)
    optimizer.step()
    ema.step(accelerator.unwrap_model(student).parameters())


def export_student(
    teacher: Teacher,
    student,
    timesteps: list[int],
    out: Path,
    dtype: str,
    info: dict | None = None,
    decoder: str | None = None,
) -> Path:
    """The student as a ``OneStepPipeline`` (with the teacher's VAE, or the decoder in the ``decoder``
    folder, e.g. ``genkit train tiny-decoder``'s; the teacher's text encoder and tokenizer; LCMScheduler),
    and ``info`` (method, steps, wall time) as ``distill.json`` beside it."""
    from diffusers import AutoModel

    from genkit.pipelines.one_step import OneStepPipeline
    from genkit.pipelines.one_step.pipeline_one_step import student_scheduler
    from genkit.training.latents import save_pipeline

    pipe = OneStepPipeline(
        denoiser=student,
        vae=teacher.pipe.vae
        if decoder is None
        else AutoModel.from_pretrained(decoder).to(teacher.pipe.device),
        text_encoder=teacher.pipe.text_encoder,
        tokenizer=teacher.pipe.tokenizer,
        scheduler=student_scheduler(teacher.pipe.scheduler.config, len(timesteps)),
        student_timesteps=timesteps,
    )
    save_pipeline(pipe, out, dtype)
    if info is not None:
        with atomic_file(out / "distill.json") as tmp:
            tmp.write_text(json.dumps({"teacher": teacher.name, **info}, indent=2) + "\n")
    return out


def finish(
    accelerator, teacher: Teacher, student, ema, timesteps, cfg: DistillConfig, info: dict, t0: float
) -> Path:
    """Copy the EMA weights into the student, export it as ``OUT/model`` (main process) with ``info``, the
    minutes since ``t0`` and the config in ``distill.json``, and end the run."""
    final_student = accelerator.unwrap_model(student).eval()
    ema.copy_to(final_student.parameters())
    final = Path(cfg.out) / "model"
    if accelerator.is_main_process:
        minutes = (time.perf_counter() - t0) / 60
        info = {**info, "train_minutes_this_run": minutes, "config": dataclasses.asdict(cfg)}
        export_student(teacher, final_student, timesteps, final, cfg.save_dtype, info, cfg.decoder)
    accelerator.end_training()
    return final
