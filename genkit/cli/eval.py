"""``genkit eval --model NAME|PATH`` or ``genkit eval --images DIR``: prompt accuracy, FD, precision/recall,
diversity (``genkit.metrics.evaluate``); for a video model, motion and frame accuracy, flicker and FVD."""

from __future__ import annotations

from genkit.cli._args import add_dataclass_args, from_args
from genkit.metrics.evaluate import EvalConfig, evaluate, results_table


def _cli(ns) -> int:
    cfg = from_args(EvalConfig, ns)
    print(results_table(evaluate(cfg)))
    if cfg.out:
        print(f"wrote {cfg.out}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("eval", help="measure a model or a folder of images", description=__doc__)
    add_dataclass_args(p, EvalConfig)
    p.set_defaults(run=_cli)
