"""``genkit video PROMPT... [--model NAME|PATH] [--frames N] [--steps N] ...``: clips as mp4 and gif."""

from __future__ import annotations

from genkit.cli._args import add_dataclass_args, from_args
from genkit.video import VideoConfig, video
from genkit.video import __doc__ as DOC


def _cli(ns) -> int:
    folder, n = video(from_args(VideoConfig, ns))
    print(f"wrote {n} clips (mp4 and gif) and metadata.jsonl to {folder}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("video", help="generate video clips from text prompts", description=DOC)
    add_dataclass_args(p, VideoConfig)
    p.set_defaults(run=_cli)
