"""The teacher (any diffusers pipeline folder) and the fake score initialised from it.

A teacher is a pipeline folder with a denoiser called as ``denoiser(x_t, t, encoder_hidden_states)
.sample`` (diffusers' ``UNet2DConditionModel``, genkit's FPDM and DiT transformers), a CLIP-style text
encoder and tokenizer, a VAE and a DDPM-family scheduler whose ``prediction_type`` is epsilon,
v_prediction or sample. Only the scheduler's ``alphas_cumprod`` is used: the noising is
``x_t = alpha_t x + sigma_t eps`` throughout.
"""

from __future__ import annotations

import contextlib
import copy
import json
from pathlib import Path

import torch

from genkit.distill.losses import alpha_sigma, prediction_to_eps, prediction_to_x0
from genkit.models.text import tokenize
from genkit.utils import GenkitError, reading

__all__ = ["PREDICTION_TYPES", "Teacher", "build_fake_score"]

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


class Teacher:
    """A frozen teacher loaded from a pipeline folder, with the helpers the trainers call."""

    @staticmethod
    def check(name_or_path: str) -> tuple[Path, str]:
        """(folder, prediction type) of a teacher, without loading it; GenkitError if it cannot be one."""
        from genkit.loading import resolve_model

        path = resolve_model(name_or_path)
        with reading(f"cannot read the teacher folder {str(path)!r}"):
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
        return path, kind

    def __init__(self, name_or_path: str, device: torch.device | str = "cpu"):
        from genkit.loading import load_pipeline

        path, kind = self.check(name_or_path)
        pipe = load_pipeline(path, device=device)
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
        one batched call; ``guidance`` is a float or one scale per sample. A float 1.0 is the conditional
        prediction alone: one call on the batch, not two (VSD's fake score)."""
        if isinstance(guidance, (int, float)) and guidance == 1:
            return fn(model, x_t, t, states)
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


def build_fake_score(teacher: Teacher, kind: str, lora_rank: int):
    """The fake score, initialised from the teacher: a full trainable copy (``"copy"``), or a LoRA adapter
    on the teacher's own denoiser (``"lora"``, SwiftBrush's choice: one set of weights serves both scores).
    Returns (fake model, context manager factory under which the teacher's denoiser is the real score)."""
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
