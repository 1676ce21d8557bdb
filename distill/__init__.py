"""genkit.distill: one/few-step distillation of any diffusers teacher, from prompts only.

- ``config.DistillConfig``: the options (``genkit distill``'s command line);
- ``teacher.Teacher``: the frozen teacher from a pipeline folder, and the fake score built from it;
- ``loop.distill(cfg, method)``: the alternating fake-score / student loop both methods share;
- ``dmd.DMD`` (DMD2) and ``vsd.VSD`` (SwiftBrush): what each method changes;
- ``losses``: the losses as plain functions of tensors.

``run_distillation(cfg)`` runs the method ``cfg.method`` names.
"""

from pathlib import Path

from genkit.distill.config import DistillConfig
from genkit.distill.dmd import DMD, train_dmd
from genkit.distill.loop import distill
from genkit.distill.teacher import Teacher
from genkit.distill.vsd import VSD, train_vsd

__all__ = ["DMD", "VSD", "DistillConfig", "Teacher", "distill", "run_distillation", "train_dmd", "train_vsd"]


def run_distillation(cfg: DistillConfig) -> Path:
    """Distil with the method ``cfg.method`` names ("dmd" or "vsd"); returns the student pipeline's folder."""
    return distill(cfg, DMD(cfg) if cfg.method == "dmd" else VSD(cfg))
