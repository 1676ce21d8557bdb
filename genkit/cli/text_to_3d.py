"""``genkit text-to-3d PROMPT [--method sds|vsd] [--prior NAME|PATH] [--out DIR] ...``: a mesh (obj, glb),
a turntable video (mp4, gif) and the field's weights, by score distillation from a 2-D prior."""

from __future__ import annotations

from genkit.cli._args import add_dataclass_args, from_args


def _cli(ns) -> int:
    from genkit.pipelines.text_to_3d import TextTo3DConfig, text_to_3d

    cfg = from_args(TextTo3DConfig, ns)
    out = text_to_3d(cfg)
    where = str(out) if cfg.particles == 1 else f"{out}/particle-0 ... particle-{cfg.particles - 1}"
    print(
        f"wrote mesh.obj, mesh.glb, turntable.mp4, turntable.gif, field.safetensors and metadata.json to {where}"
    )
    return 0


def register(sub) -> None:
    from genkit.pipelines.text_to_3d.system import TextTo3DConfig
    from genkit.pipelines.text_to_3d.system import __doc__ as DOC

    p = sub.add_parser(
        "text-to-3d", help="a 3-D object from a text prompt (score distillation)", description=DOC
    )
    add_dataclass_args(p, TextTo3DConfig)
    p.set_defaults(run=_cli)
