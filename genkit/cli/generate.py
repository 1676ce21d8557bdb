"""``genkit generate PROMPT... [--model NAME|PATH] [--steps N] [--scheduler S] ...``: images and a grid."""

from __future__ import annotations

from genkit.cli._args import add_dataclass_args, from_args
from genkit.generate import GenerateConfig, generate
from genkit.generate import __doc__ as DOC


def _cli(ns) -> int:
    grid, n = generate(from_args(GenerateConfig, ns))
    print(f"wrote {n} images, one row per prompt, to {grid}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("generate", help="generate images from text prompts", description=DOC)
    add_dataclass_args(p, GenerateConfig)
    p.set_defaults(run=_cli)
