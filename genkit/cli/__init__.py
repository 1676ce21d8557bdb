"""The ``genkit`` command: one console script, one subcommand per file in this folder.

User mistakes raise :class:`genkit.utils.GenkitError`; ``main`` prints them as one line on stderr and
exits with status 2 (argparse's usage errors use the same status), never with a traceback.
"""

from __future__ import annotations

import os
import sys

from genkit.cli._args import OneLineArgumentParser
from genkit.utils import GenkitError


def _quiet_libraries() -> None:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # The libraries' own "Loading ..." bars would break the one-line error promise on stderr.
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()


def build_parser() -> OneLineArgumentParser:
    import importlib.metadata

    from genkit.cli import avatar, distill, env, generate, models, nerf, sign, text_to_3d, train, video
    from genkit.cli import eval as eval_cmd

    parser = OneLineArgumentParser(
        prog="genkit", description="genkit: generative modeling from the command line"
    )
    parser.add_argument(
        "--version", action="version", version=f"genkit {importlib.metadata.version('genkit')}"
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=OneLineArgumentParser
    )
    for module in (generate, video, text_to_3d, sign, train, distill, nerf, avatar, eval_cmd, models, env):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    _quiet_libraries()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except GenkitError as e:
        sys.stderr.write(f"genkit {args.command}: error: {e}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"genkit {args.command}: interrupted\n")
        return 130
