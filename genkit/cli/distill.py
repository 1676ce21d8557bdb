"""``genkit distill --method dmd|vsd --teacher NAME|PATH --out DIR [--steps-student 1..4] ...``: distil a
multi-step teacher into a 1-4-step student (``OneStepPipeline``), from prompts only.

``--method dmd`` is DMD2 (a fully trained fake score, 5 fake-score updates per student update, optional
GAN); ``--method vsd`` is SwiftBrush's variational score distillation (LoRA fake score, 1:1). Both run on
accelerate (``accelerate launch -m genkit distill ...`` for several GPUs), save resumable checkpoints
under ``OUT/checkpoints`` and write the student to ``OUT/model``; ``genkit generate --model OUT/model``
samples from it."""

from __future__ import annotations

from genkit.cli._args import add_dataclass_args, from_args


def _cli(ns) -> int:
    from genkit.distill import DistillConfig, run_distillation

    path = run_distillation(from_args(DistillConfig, ns))
    print(f"wrote the student pipeline to {path} (genkit generate --model {path} ...)")
    return 0


def register(sub) -> None:
    from genkit.distill.config import DistillConfig

    p = sub.add_parser("distill", help="distil a teacher into a one/few-step student", description=__doc__)
    add_dataclass_args(p, DistillConfig)
    p.set_defaults(run=_cli)
