"""``genkit avatar data|train|render``: head avatars from mesh-anchored hash-table blendshapes.

    genkit avatar data --out data/head                      # the procedural head's monocular video
    genkit avatar train --data data/head --out runs/avatar  # fit the avatar (or --model global_hash|big_mlp)
    genkit avatar render --demo --out head.mp4              # the shipped avatar on a demo expression sequence
    genkit avatar render --checkpoint runs/avatar --expressions codes.npz --out head.mp4

``--expressions`` takes ``.npz`` (``expressions`` (N, E), optional ``pose`` (N, 3) and ``vertices``
(N, V, 3): the tracked meshes, e.g. FLAME output), ``.npy`` (N, E) or ``.json`` (a list of lists). Without
``vertices`` the meshes come from genkit's procedural head, so its vertex count must match the avatar's.
Rendering prints the frames per second of the avatar alone (no video encoding).
"""

from __future__ import annotations

from genkit.cli._args import OneLineArgumentParser, add_dataclass_args, from_args


def _data(ns) -> int:
    from genkit.render.avatar import HeadDataConfig, make_head_dataset

    cfg = from_args(HeadDataConfig, ns)
    path = make_head_dataset(cfg.out, cfg.size, cfg.frames, cfg.seed, cfg.light)
    print(f"wrote {path} (meta.json, train/test npz and PNG frames)")
    return 0


def _train(ns) -> int:
    from genkit.render.avatar import AvatarTrainConfig, train_avatar

    path = train_avatar(from_args(AvatarTrainConfig, ns))
    print(f"wrote {path} and {path.parent / 'report.json'}")
    return 0


def _render(ns) -> int:
    from genkit.render.avatar import AvatarRenderConfig, render_avatar_video

    cfg = from_args(AvatarRenderConfig, ns)
    r = render_avatar_video(cfg)
    stages = (
        " (" + ", ".join(f"{k} {v:.1f}" for k, v in r["stage_ms"].items()) + " ms per frame)"
        if r["stage_ms"] is not None
        else " (compiled)"
    )
    print(f"rendered {r['frames']} frames at {cfg.size}x{cfg.size}: {r['fps']:.1f} frames per second{stages}")
    print(f"wrote {r['path']}")
    return 0


def register(sub) -> None:
    from genkit.render.avatar import AvatarRenderConfig, AvatarTrainConfig, HeadDataConfig

    p = sub.add_parser(
        "avatar", help="head avatars: data, training, real-time rendering", description=__doc__
    )
    what = p.add_subparsers(dest="what", required=True, metavar="WHAT", parser_class=OneLineArgumentParser)
    for name, cfg, fn, help_ in (
        (
            "data",
            HeadDataConfig,
            _data,
            "render the procedural head's monocular video (frames, masks, meshes)",
        ),
        ("train", AvatarTrainConfig, _train, "fit an avatar (or a baseline) to a head dataset"),
        ("render", AvatarRenderConfig, _render, "render an avatar driven by expression codes to a video"),
    ):
        q = what.add_parser(name, help=help_, description=help_)
        add_dataclass_args(q, cfg)
        q.set_defaults(run=fn)
