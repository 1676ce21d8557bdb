"""``genkit distill --method dmd|vsd --teacher NAME|PATH --out DIR [--steps-student 1..4] ...``: distil a
multi-step teacher into a 1-4-step student (``OneStepPipeline``), from prompts only.

``--method dmd`` is DMD2 (a fully trained fake score, 5 fake-score updates per student update, optional
GAN); ``--method vsd`` is SwiftBrush's variational score distillation (LoRA fake score, 1:1). Both run on
accelerate (``accelerate launch -m genkit distill ...`` for several GPUs), save resumable checkpoints
under ``OUT/checkpoints`` and write the student to ``OUT/model``; ``genkit generate --model OUT/model``
samples from it."""

from __future__ import annotations

from genkit.cli._args import add_dataclass_args, from_args


def _run(ns) -> int:
    from genkit.distill.dmd import train_dmd
    from genkit.distill.teacher import DistillConfig
    from genkit.distill.vsd import train_vsd

    cfg = from_args(DistillConfig, ns)
    path = (train_dmd if ns.method == "dmd" else train_vsd)(cfg)
    print(f"wrote the student pipeline to {path} (genkit generate --model {path} ...)")
    return 0


def register(sub) -> None:
    from genkit.distill.teacher import DistillConfig

    p = sub.add_parser("distill", help="distil a teacher into a one/few-step student", description=__doc__)
    p.add_argument("--method", choices=["dmd", "vsd"], default="dmd", help="DMD2 or VSD (default: dmd)")
    add_dataclass_args(p, DistillConfig)
    p.set_defaults(run=_run)
