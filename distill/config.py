"""``genkit distill``'s options: one dataclass, which is also the command line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from genkit.training.loop import device_field, save_dtype_field
from genkit.utils import GenkitError

__all__ = ["DistillConfig", "load_prompts"]


@dataclass
class DistillConfig:
    """The options of ``genkit distill`` (defaults: DMD2's where they carry over to genkit's small models;
    ``None``: the method's own default)."""

    method: str = field(
        default="dmd",
        metadata={"help": "DMD2 (distribution matching) or VSD (SwiftBrush)", "choices": ["dmd", "vsd"]},
    )

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
    device: str = device_field()
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
