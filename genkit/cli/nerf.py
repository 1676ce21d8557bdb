"""``genkit nerf train --data DIR --out RUN`` and ``genkit nerf render --checkpoint RUN --out turntable.mp4``.

Training reads a Blender (``transforms_train.json``) or nerfstudio (``transforms.json``) scene, runs on
accelerate with resumable checkpoints and writes ``RUN/model.safetensors`` and ``RUN/report.json`` (test
PSNR, samples per ray, the training curve). Rendering writes a turntable video (imageio) and a PNG strip
of its frames beside it; ``genkit nerf mesh`` exports the density's level set (marching cubes, trimesh)."""

from __future__ import annotations

from genkit.cli._args import OneLineArgumentParser, add_dataclass_args, from_args
from genkit.utils import GenkitError


def _train(ns) -> int:
    from genkit.render.trainer import NerfTrainConfig, train_nerf

    path = train_nerf(from_args(NerfTrainConfig, ns))
    print(f"wrote {path} and {path.parent / 'report.json'}")
    return 0


def _render(ns) -> int:
    import imageio.v3 as iio
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from genkit.render.trainer import load_field, orbit_poses, render_image
    from genkit.utils import VIDEO, atomic_file, output_file, write_video

    if ns.frames <= 0 or ns.size <= 0:
        raise GenkitError("--frames and --size must be positive")
    out = output_file(ns.out, VIDEO)
    field_, estimator, cfg = load_field(ns.checkpoint)
    focal = 0.5 * ns.size / np.tan(0.5 * 0.6911)  # the NeRF-synthetic camera's field of view
    frames = []
    for c2w in tqdm(orbit_poses(ns.frames, ns.radius, ns.elevation), desc="render", unit="frame"):
        img, _ = render_image(field_, estimator, c2w, focal, ns.size, ns.size, cfg)
        frames.append((img.numpy() * 255).round().astype(np.uint8))
    write_video(out, frames, ns.fps)
    strip = out.with_suffix(".png")
    with atomic_file(strip) as tmp:
        iio.imwrite(tmp, np.concatenate(frames[:: max(1, len(frames) // 8)], axis=1), extension=".png")
    print(f"wrote {out} ({len(frames)} frames) and {strip}")
    torch.set_grad_enabled(True)
    return 0


def _mesh(ns) -> int:
    from genkit.render.mesh import extract_mesh, save_mesh
    from genkit.render.trainer import load_field

    field_, _, cfg = load_field(ns.checkpoint)
    mesh = extract_mesh(field_.density, field_.aabb.tolist(), ns.resolution, ns.threshold)
    path = save_mesh(mesh, ns.out)
    print(f"wrote {path} ({len(mesh.vertices)} vertices, {len(mesh.faces)} faces)")
    return 0


def register(sub) -> None:
    from genkit.render.trainer import NerfTrainConfig

    p = sub.add_parser("nerf", help="train and render neural radiance fields", description=__doc__)
    what = p.add_subparsers(dest="what", required=True, metavar="WHAT", parser_class=OneLineArgumentParser)
    t = what.add_parser("train", help="train a hash-grid radiance field on a scene")
    add_dataclass_args(t, NerfTrainConfig)
    t.set_defaults(run=_train)
    r = what.add_parser("render", help="render a turntable video of a trained field")
    r.add_argument("--checkpoint", required=True, help="RUN folder or its model.safetensors")
    r.add_argument("--out", default="outputs/turntable.mp4", help="video path (.mp4 or .gif)")
    r.add_argument("--frames", type=int, default=36, help="frames of the orbit")
    r.add_argument("--size", type=int, default=100, help="frame width and height in pixels")
    r.add_argument("--radius", type=float, default=4.0, help="camera distance from the origin")
    r.add_argument("--elevation", type=float, default=30.0, help="camera elevation in degrees")
    r.add_argument("--fps", type=int, default=12, help="frames per second")
    r.set_defaults(run=_render)
    m = what.add_parser("mesh", help="export the density level set as a mesh (marching cubes)")
    m.add_argument("--checkpoint", required=True, help="RUN folder or its model.safetensors")
    m.add_argument("--out", default="outputs/mesh.ply", help="mesh path (.ply, .obj or .glb)")
    m.add_argument("--resolution", type=int, default=128, help="grid resolution per axis")
    m.add_argument("--threshold", type=float, default=10.0, help="density level of the surface")
    m.set_defaults(run=_mesh)
