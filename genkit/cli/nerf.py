"""``genkit nerf train --data DIR --out RUN``, ``genkit nerf render --checkpoint RUN --out turntable.mp4`` and
``genkit nerf mesh --checkpoint RUN --out mesh.ply``.

Training reads a Blender (``transforms_train.json``) or nerfstudio (``transforms.json``) scene, runs on
accelerate with resumable checkpoints and writes ``RUN/model.safetensors`` and ``RUN/report.json`` (test
PSNR, samples per ray, the training curve). Rendering writes a turntable video (imageio) and a PNG strip
of its frames beside it; ``mesh`` exports the density's level set (marching cubes, trimesh)."""

from __future__ import annotations

from genkit.cli._args import OneLineArgumentParser, add_dataclass_args, from_args


def _train(ns) -> int:
    from genkit.render.nerf import NerfTrainConfig, train_nerf

    path = train_nerf(from_args(NerfTrainConfig, ns))
    print(f"wrote {path} and {path.parent / 'report.json'}")
    return 0


def _render(ns) -> int:
    from genkit.render.nerf import NerfRenderConfig, render_turntable

    video, strip, n = render_turntable(from_args(NerfRenderConfig, ns))
    print(f"wrote {video} ({n} frames) and {strip}")
    return 0


def _mesh(ns) -> int:
    from genkit.render.nerf import NerfMeshConfig, export_mesh

    path, mesh = export_mesh(from_args(NerfMeshConfig, ns))
    print(f"wrote {path} ({len(mesh.vertices)} vertices, {len(mesh.faces)} faces)")
    return 0


def register(sub) -> None:
    from genkit.render.nerf import NerfMeshConfig, NerfRenderConfig, NerfTrainConfig

    p = sub.add_parser("nerf", help="train and render neural radiance fields", description=__doc__)
    what = p.add_subparsers(dest="what", required=True, metavar="WHAT", parser_class=OneLineArgumentParser)
    for name, cfg, fn, help_ in (
        ("train", NerfTrainConfig, _train, "train a hash-grid radiance field on a scene"),
        ("render", NerfRenderConfig, _render, "render a turntable video of a trained field"),
        ("mesh", NerfMeshConfig, _mesh, "export the density level set as a mesh (marching cubes)"),
    ):
        q = what.add_parser(name, help=help_, description=help_)
        add_dataclass_args(q, cfg)
        q.set_defaults(run=fn)
