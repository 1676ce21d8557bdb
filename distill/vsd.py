"""``genkit distill --method vsd``: Variational Score Distillation, image-free (SwiftBrush, Nguyen & Tran 2024).

The student starts as a copy of the teacher's denoiser and maps noise to a clean sample. The fake score is
by default a LoRA on the teacher's own denoiser (``disable_adapters()`` gives back the teacher, so one set
of weights serves both), trained with the denoising loss on the student's samples and 10% empty prompts
(so it has an unconditional branch). Student and fake score alternate 1:1. The student's gradient is
``sigma_t^2 (eps_real^w - eps_fake^w)``, with guidance ``w`` on both scores (``losses.vsd_loss``);
SNOOPI's random guidance scale (``--guidance-max``) draws ``w`` per sample, the same for both. The loop is
``distill/loop.py``'s.
"""

from __future__ import annotations

from pathlib import Path

import torch

from genkit.distill.config import DistillConfig
from genkit.distill.loop import Distillation, distill
from genkit.distill.losses import vsd_loss
from genkit.utils import GenkitError

__all__ = ["VSD", "train_vsd"]

FAKE_CAPTION_DROPOUT = 0.1


class VSD:
    """What VSD (SwiftBrush) adds to the shared loop: caption dropout for the fake score and the VSD
    student loss, with guidance on both scores."""

    name, fake_score, fake_updates = "vsd", "lora", 1

    def __init__(self, cfg: DistillConfig):
        if cfg.gan_weight > 0 or cfg.regression_weight > 0:
            raise GenkitError("--gan-weight and --regression-weight are DMD options (use --method dmd)")
        self.cfg = cfg

    def setup(self, run: Distillation) -> list[torch.nn.Parameter]:
        return []

    def prepare(self, accelerator) -> None:
        pass

    def fake_conditioning(self, run: Distillation, states: torch.Tensor) -> torch.Tensor:
        drop = torch.rand(self.cfg.batch_size, device=states.device) < FAKE_CAPTION_DROPOUT
        return torch.where(drop[:, None, None], run.null_states, states)

    def fake_extra_loss(self, run: Distillation, step: int, k: int, t: torch.Tensor):
        return None

    def student_loss(self, run: Distillation, x, x_t, t, t_aux, states, guidance, depth: int, step: int):
        teacher = run.teacher
        with torch.no_grad():
            with run.real_score():
                eps_real = teacher.guided(
                    teacher.eps, teacher.denoiser, x_t, t, states, run.null_states, guidance
                )
            eps_fake = teacher.guided(teacher.eps, run.fake, x_t, t, states, run.null_states, guidance)
        sigma = teacher.alpha_sigma(t, x.ndim)[1]
        loss = vsd_loss(x, eps_real, eps_fake, sigma**2)
        return loss, {"vsd": f"{loss.item():.2e}"}


def train_vsd(cfg: DistillConfig) -> Path:
    """``genkit distill --method vsd``: the student pipeline's folder."""
    return distill(cfg, VSD(cfg))
