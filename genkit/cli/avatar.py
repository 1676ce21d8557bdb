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

import json
import sys
import time
from pathlib import Path

from genkit.cli._args import OneLineArgumentParser, add_dataclass_args, from_args
from genkit.utils import GenkitError, reading


def bundled_avatar() -> Path:
    from genkit.assets import bundled_models

    models = {k: v for k, v in bundled_models().items() if v["kind"] == "avatar"}
    if not models:
        raise GenkitError("no bundled avatar in this installation; pass --checkpoint RUN")
    return Path(next(iter(models.values()))["path"])


def demo_sequence(frames: int, num_expressions: int):
    """A smooth expression and pose sequence that visits each expression in turn."""
    import numpy as np

    t = np.linspace(0, 1, frames, endpoint=False)
    expr = np.zeros((frames, num_expressions), dtype=np.float32)
    for i in range(num_expressions):  # each expression rises and falls in its own slot
        expr[:, i] = np.clip(np.sin(np.pi * (t * num_expressions - i)), 0, 1) * (
            (t * num_expressions) // 1 == i
        )
    expr[:, 0] = np.maximum(expr[:, 0], 0.5 * np.clip(np.sin(6 * np.pi * t), 0, 1))  # talking
    pose = np.stack([0.25 * np.sin(2 * np.pi * t), 0.08 * np.sin(4 * np.pi * t), np.zeros_like(t)], 1)
    return expr, pose.astype(np.float32)


def read_expressions(path: str, num_expressions: int):
    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise GenkitError(f"--expressions {path!r} does not exist")
    if p.suffix not in (".npz", ".npy", ".json"):
        raise GenkitError(f"--expressions must be .npz, .npy or .json, got {path!r}")
    pose = verts = None
    with reading(
        f"cannot read expressions from {path}"
    ):  # pickled or object arrays, broken files, non-numbers
        if p.suffix == ".npz":
            z = np.load(p, allow_pickle=False)
            if "expressions" not in z.files:
                raise GenkitError(f"{path} has no 'expressions' array")
            expr = z["expressions"]
            pose = z["pose"] if "pose" in z.files else None
            verts = z["vertices"] if "vertices" in z.files else None
        elif p.suffix == ".npy":
            expr = np.load(p, allow_pickle=False)
        else:
            expr = json.loads(p.read_text())
        expr = np.asarray(expr, dtype=np.float32)
        pose = None if pose is None else np.asarray(pose, dtype=np.float32)
        verts = None if verts is None else np.asarray(verts, dtype=np.float32)
    if expr.ndim == 1:
        expr = expr[None]
    if expr.ndim != 2 or len(expr) == 0:
        raise GenkitError(f"{path}: expressions must be a non-empty (frames, {num_expressions}) array")
    if expr.shape[1] != num_expressions:
        raise GenkitError(
            f"{path}: expression vectors have {expr.shape[1]} values; this avatar takes {num_expressions}"
        )
    pose = np.zeros((len(expr), 3), np.float32) if pose is None else pose
    if pose.shape != (len(expr), 3):
        raise GenkitError(
            f"{path}: pose is {pose.shape}; expected ({len(expr)}, 3), (yaw, pitch, roll) a frame"
        )
    for name, a in (("expressions", expr), ("pose", pose), ("vertices", verts)):
        if a is not None and not np.isfinite(a).all():
            raise GenkitError(f"{path}: NaN or inf in {name}")
    return expr, pose, verts


def _data(ns) -> int:
    from genkit.render.avatar_data import make_head_dataset

    if ns.frames is not None and ns.frames < 2:
        raise GenkitError("--frames must be at least 2")
    path = make_head_dataset(ns.out, ns.size, ns.frames, ns.seed, ns.light)
    print(f"wrote {path} (meta.json, train/test npz and PNG frames)")
    return 0


def _train(ns) -> int:
    from genkit.render.avatar_trainer import AvatarTrainConfig, train_avatar

    path = train_avatar(from_args(AvatarTrainConfig, ns))
    print(f"wrote {path} and {path.parent / 'report.json'}")
    return 0


def _render(ns) -> int:
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from genkit.render.avatar import NO_STAGES, Stages, compile_field, render_frame
    from genkit.render.avatar_data import ProceduralHead, look_at
    from genkit.render.avatar_trainer import load_avatar
    from genkit.utils import VIDEO, output_file, write_video

    if ns.size < 16 or ns.frames <= 0 or ns.fps <= 0:
        raise GenkitError("--size must be at least 16; --frames and --fps positive")
    out = output_file(ns.out, VIDEO)
    if (ns.expressions is None) == (not ns.demo):
        raise GenkitError("pass exactly one of --expressions FILE and --demo")
    from genkit.cli.generate import resolve_device
    from genkit.render.kernels import numba_available, triton_usable

    device = torch.device(resolve_device(ns.device))
    if ns.backend == "numba" and (device.type != "cpu" or not numba_available()):
        raise GenkitError(
            "--backend numba runs on the CPU (--device cpu) and needs numba (pip install numba)"
        )
    if ns.backend == "triton" and not triton_usable(device):
        raise GenkitError("--backend triton runs on a CUDA GPU and needs triton (pip install triton)")
    model, _ = load_avatar(ns.checkpoint or bundled_avatar())
    model.to(device)
    if ns.compile:
        compile_field(model, "torch" if ns.backend == "torch" else "auto")
    n_expr = model.config.num_expressions
    expr, pose, verts = (
        read_expressions(ns.expressions, n_expr)
        if ns.expressions
        else (*demo_sequence(ns.frames, n_expr), None)
    )
    if verts is None:
        head = ProceduralHead.build()
        if len(head.template) != len(model.template) or head.num_expressions != n_expr:
            raise GenkitError("this avatar is not of genkit's procedural head: pass 'vertices' in the .npz")
        verts = np.stack([head.vertices(e, p) for e, p in zip(expr, pose, strict=True)])
    verts = torch.as_tensor(verts, dtype=torch.float32, device=device)
    if verts.shape[1:] != model.template.shape or len(verts) != len(expr):
        raise GenkitError(
            f"vertices are {tuple(verts.shape)}; expected ({len(expr)}, {len(model.template)}, 3) for this avatar"
        )
    index, neighbour = model.mesh_index()
    c2w = torch.from_numpy(look_at((0.0, 0.0, 3.2))).to(device)
    focal = 1.35 * ns.size
    stages = NO_STAGES if ns.compile else Stages()

    def frame(i):
        img, _ = render_frame(
            model,
            torch.from_numpy(expr[i]).to(device),
            torch.from_numpy(pose[i]).to(device),
            verts[i],
            c2w,
            focal,
            ns.size,
            index,
            neighbour,
            ns.samples,
            stages=stages,
            backend=ns.backend,
        )
        return (img.clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)

    t0 = time.perf_counter()
    frame(0)  # warm-up, not timed: compiles the field (--compile) or loads the CPU kernels
    if not ns.compile:
        stages.seconds.clear()
    print(f"warm-up frame: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    frames = []
    t0 = time.perf_counter()
    for i in tqdm(range(len(expr)), desc="render", unit="frame"):
        frames.append(frame(i))
    seconds = time.perf_counter() - t0
    write_video(out, frames, ns.fps)
    per_stage = (
        " ("
        + ", ".join(f"{k} {1000 * v / len(frames):.1f}" for k, v in stages.seconds.items())
        + " ms per frame)"
        if not ns.compile
        else " (compiled)"
    )
    print(
        f"rendered {len(frames)} frames at {ns.size}x{ns.size}: {len(frames) / seconds:.1f} frames per second{per_stage}"
    )
    print(f"wrote {out}")
    return 0


def register(sub) -> None:
    from genkit.render.avatar_data import LIGHTS
    from genkit.render.avatar_trainer import AvatarTrainConfig

    p = sub.add_parser(
        "avatar", help="head avatars: data, training, real-time rendering", description=__doc__
    )
    what = p.add_subparsers(dest="what", required=True, metavar="WHAT", parser_class=OneLineArgumentParser)
    d = what.add_parser("data", help="render the procedural head's monocular video (frames, masks, meshes)")
    d.add_argument("--out", default="data/head", help="dataset folder")
    d.add_argument("--size", type=int, default=128, help="frame width and height in pixels")
    d.add_argument(
        "--frames", type=int, default=None, help="training frames (default 240; test splits scale)"
    )
    d.add_argument("--seed", type=int, default=0, help="seed of the expression and pose trajectories")
    d.add_argument(
        "--light",
        choices=LIGHTS,
        default="head",
        help="the frame the light is fixed in: 'head' (turns with the head) or 'world' (the pose changes "
        "the shading too)",
    )
    d.set_defaults(run=_data)
    t = what.add_parser("train", help="fit an avatar (or a baseline) to a head dataset")
    add_dataclass_args(t, AvatarTrainConfig)
    t.set_defaults(run=_train)
    r = what.add_parser("render", help="render an avatar driven by expression codes to a video")
    r.add_argument("--checkpoint", default=None, help="RUN or RUN/model (default: the bundled avatar)")
    r.add_argument("--expressions", default=None, help=".npz/.npy/.json expression codes (see above)")
    r.add_argument("--demo", action="store_true", help="a built-in expression sequence")
    r.add_argument("--out", default="outputs/avatar.mp4", help="video path (.mp4 or .gif)")
    r.add_argument("--frames", type=int, default=48, help="frames of the --demo sequence")
    r.add_argument("--size", type=int, default=128, help="frame width and height in pixels")
    r.add_argument("--samples", type=int, default=4, help="samples per ray in the shell (training used 8)")
    r.add_argument(
        "--device", default="auto", help="'auto' (CUDA if available), 'cpu', 'cuda', 'cuda:1', ..."
    )
    r.add_argument("--fps", type=int, default=24, help="frames per second of the video")
    r.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile first (seconds; no per-stage times): the avatar's MLP after the numba kernel, or "
        "the whole torch field with --backend torch or on a GPU",
    )
    r.add_argument(
        "--backend",
        choices=("auto", "torch", "numba", "triton"),
        default="auto",
        help="the code of the shell (rasterizer, rays, samples), the compositing and the avatar's vertex "
        "frames and per-sample work: numba's CPU kernels (auto on the CPU), or the torch reference with the "
        "table lookups in Triton (auto on a GPU), or the torch reference throughout",
    )
    r.set_defaults(run=_render)
