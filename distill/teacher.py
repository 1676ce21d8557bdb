"""What both trainers share: the teacher (any diffusers pipeline folder), the prompts, the student's
sampling with backward simulation, and the export of the student as a ``OneStepPipeline``.

A teacher is a pipeline folder with a denoiser called as ``denoiser(x_t, t, encoder_hidden_states)
.sample`` (diffusers' ``UNet2DConditionModel``, genkit's FPDM and DiT transformers), a CLIP-style text
encoder and tokenizer, a VAE and a DDPM-family scheduler whose ``prediction_type`` is epsilon,
v_prediction or sample. Only the scheduler's ``alphas_cumprod`` is used: the noising is
``x_t = alpha_t x + sigma_t eps`` throughout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from genkit.distill.losses import alpha_sigma, prediction_to_eps, prediction_to_x0
from genkit.models.text import tokenize
from genkit.training.loop import save_dtype_field
from genkit.utils import GenkitError

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


@dataclass
class DistillConfig:
    """Options shared by ``genkit distill --method dmd`` and ``--method vsd`` (defaults: DMD2's where they
    carry over to genkit's small models)."""

    teacher: str = field(
        default="text2img-shapes",
        metadata={"help": "bundled model name or a diffusers pipeline folder (Stable Diffusion, FPDM, DiT)"},
    )
    out: str = field(
        default="runs/distill", metadata={"help": "run folder: checkpoints/ and the student model/"}
    )
    steps_student: int = field(default=1, metadata={"help": "student sampling steps, 1..4"})
    max_train_steps: int = field(default=800, metadata={"help": "student (generator) updates"})
    batch_size: int = field(default=32, metadata={"help": "prompts per update"})
    learning_rate: float = field(default=2e-5, metadata={"help": "student AdamW learning rate"})
    fake_learning_rate: float | None = field(
        default=None,
        metadata={
            "help": "fake-score AdamW learning rate (default: 2e-5 for a full copy, 1e-3 for a LoRA, as SwiftBrush)"
        },
    )
    fake_updates: int | None = field(
        default=None,
        metadata={
            "help": "fake-score updates per student update (default: dmd 5, DMD2's two time-scale rule; vsd 1)"
        },
    )
    fake_score: str | None = field(
        default=None,
        metadata={
            "help": "fake score: a full copy of the teacher or a LoRA on it (default: dmd copy, vsd lora)",
            "choices": ["copy", "lora"],
        },
    )
    lora_rank: int = field(default=16, metadata={"help": "LoRA rank of a LoRA fake score (alpha = rank)"})
    guidance: float = field(default=4.0, metadata={"help": "classifier-free guidance of the real score"})
    guidance_max: float | None = field(
        default=None,
        metadata={
            "help": "draw the real score's guidance uniformly in [guidance, guidance-max] each step (SNOOPI)"
        },
    )
    gan_weight: float = field(
        default=0.0,
        metadata={
            "help": "DMD2 GAN: generator loss weight (e.g. 1e-3; 0 disables); needs a UNet teacher and "
            "uses genkit's procedural images as the real data"
        },
    )
    gan_disc_weight: float = field(default=1e-2, metadata={"help": "DMD2 GAN: discriminator loss weight"})
    regression_weight: float = field(
        default=0.0,
        metadata={"help": "weight of an MSE to the teacher's sample from the same noise (0 disables)"},
    )
    regression_steps: int = field(default=25, metadata={"help": "teacher steps for the regression targets"})
    min_timestep: int = field(default=20, metadata={"help": "smallest timestep of the distillation loss"})
    max_timestep: int = field(default=980, metadata={"help": "largest timestep of the distillation loss"})
    prompts: str | None = field(
        default=None, metadata={"help": "text file, one prompt per line (default: genkit's shapes captions)"}
    )
    ema_decay: float = field(default=0.99, metadata={"help": "max EMA decay of the saved student"})
    seed: int = field(default=0, metadata={"help": "seed of prompts, noise and timesteps"})
    checkpointing_steps: int = field(
        default=100, metadata={"help": "save a resumable checkpoint every N steps"}
    )
    mixed_precision: str = field(
        default="no",
        metadata={
            "help": "accelerate mixed precision (bf16 on GPU; DMD2 found fp16 diverges)",
            "choices": ["no", "fp16", "bf16"],
        },
    )
    save_dtype: str = save_dtype_field("pipeline")
    decoder: str | None = field(
        default=None,
        metadata={
            "help": "decoder folder to ship with the student instead of the teacher's VAE (genkit train "
            "tiny-decoder); training does not use it"
        },
    )

    def fake_lr(self, kind: str) -> float:
        return self.fake_learning_rate or (1e-3 if kind == "lora" else 2e-5)

    def __post_init__(self):
        if not 1 <= self.steps_student <= 4:
            raise GenkitError(f"--steps-student must be 1..4, got {self.steps_student}")
        if min(self.max_train_steps, self.batch_size, self.checkpointing_steps, self.lora_rank) <= 0:
            raise GenkitError(
                "max-train-steps, batch-size, checkpointing-steps and lora-rank must be positive"
            )
        if self.fake_updates is not None and self.fake_updates <= 0:
            raise GenkitError(f"--fake-updates must be positive, got {self.fake_updates}")
        if not 0 <= self.min_timestep < self.max_timestep:
            raise GenkitError("need 0 <= min-timestep < max-timestep")
        if self.guidance < 1 or (self.guidance_max is not None and self.guidance_max < self.guidance):
            raise GenkitError("need 1 <= guidance <= guidance-max")
        if min(self.gan_weight, self.gan_disc_weight, self.regression_weight) < 0:
            raise GenkitError("loss weights must be non-negative")
        if self.decoder is not None and not (Path(self.decoder) / "config.json").is_file():
            raise GenkitError(
                f"--decoder {self.decoder!r} is not a model folder (genkit train tiny-decoder writes RUN/model)"
            )


class Teacher:
    """A frozen teacher loaded from a pipeline folder, with the helpers the trainers call."""

    def __init__(self, name_or_path: str, device: torch.device | str = "cpu"):
        from genkit.cli.generate import resolve_model  # bundled names and aliases, as `genkit generate`
        from genkit.pipelines import load_pipeline

        path = resolve_model(name_or_path)
        index = json.loads((path / "model_index.json").read_text())
        if "scheduler" not in index or not (path / "scheduler").is_dir():
            raise GenkitError(
                f"teacher folder {str(path)!r} has no scheduler (a diffusers pipeline folder is needed)"
            )
        sched_cfg = json.loads(next((path / "scheduler").glob("*.json")).read_text())
        kind = sched_cfg.get("prediction_type", "epsilon")
        if kind not in PREDICTION_TYPES:
            raise GenkitError(
                f"teacher prediction type {kind!r} is not supported ({', '.join(PREDICTION_TYPES)})"
            )
        if index.get("_class_name") == "OneStepPipeline":
            raise GenkitError(f"{str(path)!r} is already a distilled student; give its multi-step teacher")
        try:
            pipe = load_pipeline(path, device=device)
        except ValueError as e:
            raise GenkitError(str(e)) from None
        self.name, self.path, self.pipe, self.prediction_type = name_or_path, path, pipe, kind
        self.denoiser = getattr(pipe, "unet", None) or pipe.transformer
        self.denoiser.requires_grad_(False).eval()
        pipe.text_encoder.requires_grad_(False).eval()
        pipe.vae.requires_grad_(False).eval()
        self.alphas_cumprod = pipe.scheduler.alphas_cumprod.float()
        if kind == "epsilon" and float(self.alphas_cumprod[-1]) < 1e-6:  # DPM-Solver stores 2**-24 for 0
            raise GenkitError(
                "teacher predicts epsilon with a zero-terminal-SNR schedule: its clean-sample estimate is "
                "undefined at the student's first timestep (use a v- or sample-prediction teacher)"
            )
        self.num_train_timesteps = pipe.scheduler.config.num_train_timesteps
        cfg = self.denoiser.config
        self.latent_shape = (cfg.in_channels, cfg.sample_size, cfg.sample_size)

    # -- conditioning ---------------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, prompts: list[str]) -> torch.Tensor:
        te = self.pipe.text_encoder
        return te(tokenize(self.pipe.tokenizer, prompts).to(te.device))[0]

    # -- predictions ----------------------------------------------------------------------------------
    def alpha_sigma(self, t: torch.Tensor, ndim: int = 4):
        return alpha_sigma(self.alphas_cumprod, t, ndim)

    def x0(self, model, x_t, t, states) -> torch.Tensor:
        """Clean-sample estimate of ``model`` (teacher, student or fake score) at ``(x_t, t)``."""
        alpha, sigma = self.alpha_sigma(t, x_t.ndim)
        return prediction_to_x0(
            model(x_t, t, states).sample.float(), x_t.float(), alpha, sigma, self.prediction_type
        )

    def eps(self, model, x_t, t, states) -> torch.Tensor:
        alpha, sigma = self.alpha_sigma(t, x_t.ndim)
        return prediction_to_eps(
            model(x_t, t, states).sample.float(), x_t.float(), alpha, sigma, self.prediction_type
        )

    def guided(self, fn, model, x_t, t, states, null_states, guidance: torch.Tensor | float):
        """``fn`` (``self.x0`` or ``self.eps``) with classifier-free guidance ``null + w (cond - null)``,
        one batched call; ``guidance`` is a float or one scale per sample."""
        both = fn(model, torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([null_states, states]))
        null, cond = both.chunk(2)
        w = torch.as_tensor(guidance, dtype=null.dtype, device=null.device).view(-1, *([1] * (x_t.ndim - 1)))
        return null + w * (cond - null)

    def target(self, x0, noise, t) -> torch.Tensor:
        """What a denoiser of the teacher's prediction type regresses at ``x_t = alpha x0 + sigma noise``."""
        alpha, sigma = self.alpha_sigma(t, x0.ndim)
        return {"epsilon": noise, "v_prediction": alpha * noise - sigma * x0, "sample": x0}[
            self.prediction_type
        ]

    def add_noise(self, x0, noise, t) -> torch.Tensor:
        alpha, sigma = self.alpha_sigma(t, x0.ndim)
        return alpha * x0 + sigma * noise


def load_prompts(path: str | None) -> list[str]:
    """Prompts from a text file (one per line), or genkit's shapes captions of the train split."""
    if path is None:
        from genkit.data.shapes import prompt_set

        return prompt_set("train")
    p = Path(path)
    if not p.is_file():
        raise GenkitError(f"prompt file {path!r} not found")
    prompts = [line.strip() for line in p.read_text().splitlines() if line.strip()]
    if not prompts:
        raise GenkitError(f"prompt file {path!r} has no prompts")
    return prompts


def step_rng(seed: int, step: int, k: int = 0) -> np.random.Generator:
    """A generator that depends only on (seed, step, k): every process and a resumed run draw the same
    prompts' indices, timesteps' ranges and backward-simulation depths."""
    return np.random.default_rng([seed, 7, step, k])


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


def export_student(
    teacher: Teacher,
    student,
    timesteps: list[int],
    out: Path,
    dtype: str,
    info: dict | None = None,
    decoder: str | None = None,
) -> Path:
    """The student as a ``OneStepPipeline`` (the teacher's VAE, or the ``decoder`` folder's
    ``AutoencoderTiny``; the teacher's text encoder and tokenizer; LCMScheduler), and ``info`` (method,
    steps, wall time) as ``distill.json`` beside it."""
    from diffusers import AutoencoderTiny

    from genkit.pipelines.one_step import OneStepPipeline
    from genkit.pipelines.one_step.pipeline_one_step import student_scheduler
    from genkit.training.latents import save_pipeline

    pipe = OneStepPipeline(
        denoiser=student,
        vae=teacher.pipe.vae
        if decoder is None
        else AutoencoderTiny.from_pretrained(decoder).to(teacher.pipe.device),
        text_encoder=teacher.pipe.text_encoder,
        tokenizer=teacher.pipe.tokenizer,
        scheduler=student_scheduler(teacher.pipe.scheduler.config, len(timesteps)),
        student_timesteps=timesteps,
    )
    save_pipeline(pipe, out, dtype)
    if info is not None:
        from genkit.utils import atomic_file

        with atomic_file(out / "distill.json") as tmp:
            tmp.write_text(json.dumps({"teacher": teacher.name, **info}, indent=2) + "\n")
    return out


def build_fake_score(teacher: Teacher, kind: str, lora_rank: int):
    """The fake score, initialised from the teacher: a full trainable copy (``"copy"``), or a LoRA adapter
    on the teacher's own denoiser (``"lora"``, SwiftBrush's choice: one set of weights serves both scores).
    Returns (fake model, context manager factory under which the teacher's denoiser is the real score)."""
    import contextlib
    import copy

    if kind == "copy":
        fake = copy.deepcopy(teacher.denoiser).requires_grad_(True).train()
        return fake, contextlib.nullcontext
    if not hasattr(teacher.denoiser, "add_adapter"):
        raise GenkitError(
            f"a LoRA fake score needs a denoiser with diffusers' PEFT support; "
            f"{type(teacher.denoiser).__name__} has none (use --fake-score copy)"
        )
    from peft import LoraConfig

    den = teacher.denoiser
    den.add_adapter(
        LoraConfig(
            r=lora_rank,
            lora_alpha=lora_rank,
            init_lora_weights="gaussian",
            target_modules=["to_q", "to_k", "to_v", "to_out.0"],
        ),
        adapter_name="fake",
    )
    den.train()

    @contextlib.contextmanager
    def real_score():
        den.disable_adapters()
        try:
            yield
        finally:
            den.enable_adapters()

    return den, real_score


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


def finish(
    accelerator, teacher: Teacher, student, ema, timesteps, cfg: DistillConfig, info: dict, t0: float
) -> Path:
    """Copy the EMA weights into the student, export it as ``OUT/model`` (main process) with ``info``, the
    minutes since ``t0`` and the config in ``distill.json``, and end the run."""
    import dataclasses
    import time

    final_student = accelerator.unwrap_model(student).eval()
    ema.copy_to(final_student.parameters())
    final = Path(cfg.out) / "model"
    if accelerator.is_main_process:
        minutes = (time.perf_counter() - t0) / 60
        info = {**info, "train_minutes_this_run": minutes, "config": dataclasses.asdict(cfg)}
        export_student(teacher, final_student, timesteps, final, cfg.save_dtype, info, cfg.decoder)
    accelerator.end_training()
    return final
