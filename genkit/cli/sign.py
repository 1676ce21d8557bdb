"""``genkit sign "SENTENCE" [--out clip.mp4] [--method diffusion|sds] [--model NAME|PATH] ...``: a signing
avatar video and its SMPL-X-style poses (npz)."""

from __future__ import annotations

from genkit.cli._args import add_dataclass_args, from_args


def _cli(ns) -> int:
    from genkit.pipelines.sign.system import SignConfig, sign

    out = sign(from_args(SignConfig, ns))
    print(f"wrote {out}, {out.with_suffix('.npz')} and {out.with_suffix('.json')}")
    return 0


def register(sub) -> None:
    from genkit.pipelines.sign.system import SignConfig
    from genkit.pipelines.sign.system import __doc__ as DOC

    p = sub.add_parser("sign", help="a signing avatar video from a sentence of glosses", description=DOC)
    add_dataclass_args(p, SignConfig)
    p.set_defaults(run=_cli)
