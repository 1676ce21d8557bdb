"""Drive a trained avatar: expression codes (a file, or a demo sequence) -> frames -> a video
(``genkit avatar render``).

``--expressions`` takes ``.npz`` (``expressions`` (N, E), optional ``pose`` (N, 3) and ``vertices``
(N, V, 3): the tracked meshes, e.g. FLAME output), ``.npy`` (N, E) or ``.json`` (a list of lists). Without
``vertices`` the meshes come from genkit's procedural head, so its vertex count must match the avatar's.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from genkit.render.avatar.head import ProceduralHead
from genkit.render.avatar.model import NO_STAGES, Stages, compile_field, render_frame
from genkit.render.avatar.trainer import load_avatar
from genkit.render.backends import numba_available, triton_usable
from genkit.render.geometry import look_at
from genkit.utils import VIDEO, GenkitError, output_file, reading, write_video

__all__ = ["AvatarRenderConfig", "demo_sequence", "read_expressions", "render_avatar_video"]


@dataclass
class AvatarRenderConfig:
    checkpoint: str | None = field(
        default=None, metadata={"help": "RUN or RUN/model (default: the bundled avatar)"}
    )
    expressions: str | None = field(
        default=None, metadata={"help": ".npz/.npy/.json expression codes (see genkit avatar --help)"}
    )
    demo: bool = field(default=False, metadata={"help": "a built-in expression sequence"})
    out: str = field(default="outputs/avatar.mp4", metadata={"help": "video path (.mp4 or .gif)"})
    frames: int = field(default=48, metadata={"help": "frames of the --demo sequence"})
    size: int = field(default=128, metadata={"help": "frame width and height in pixels"})
    num_samples: int = field(default=4, metadata={"help": "samples per ray in the shell (training used 8)"})
    device: str = field(default="auto", metadata={"help": "'auto' (CUDA if available), 'cpu', 'cuda:1', ..."})
    fps: int = field(default=24, metadata={"help": "frames per second of the video"})
    compile: bool = field(
        default=False,
        metadata={
            "help": "torch.compile first (seconds; no per-stage times): the avatar's MLP after the numba "
            "kernel, or the whole torch field with --backend torch or on a GPU"
        },
    )
    backend: str = field(
        default="auto",
        metadata={
            "help": "the code of the shell (rasterizer, rays, samples), the compositing and the avatar's "
            "vertex frames and per-sample work: numba's CPU kernels (auto on the CPU), or the torch reference "
            "with the table lookups in Triton (auto on a GPU), or the torch reference throughout",
            "choices": ["auto", "torch", "numba", "triton"],
        },
    )

    def __post_init__(self):
        if self.size < 16 or self.frames <= 0 or self.fps <= 0 or self.num_samples <= 0:
            raise GenkitError("--size must be at least 16; --frames, --fps and --num-samples positive")
        if (self.expressions is None) == (not self.demo):
            raise GenkitError("pass exactly one of --expressions FILE and --demo")


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


def render_avatar_video(cfg: AvatarRenderConfig) -> dict:
    """Render the avatar driven by ``cfg``'s expressions into ``cfg.out``. Returns the path, the frame
    count, frames per second of the avatar alone (no video encoding) and the per-stage milliseconds."""
    from tqdm.auto import tqdm

    from genkit.loading import bundled_path, resolve_device

    out = output_file(cfg.out, VIDEO)
    device = torch.device(resolve_device(cfg.device))
    if cfg.backend == "numba" and (device.type != "cpu" or not numba_available()):
        raise GenkitError(
            "--backend numba runs on the CPU (--device cpu) and needs numba (pip install numba)"
        )
    if cfg.backend == "triton" and not triton_usable(device):
        raise GenkitError("--backend triton runs on a CUDA GPU and needs triton (pip install triton)")
    model, _ = load_avatar(cfg.checkpoint or bundled_path(None, kind="avatar"))
    model.to(device)
    if cfg.compile:
        compile_field(model, "torch" if cfg.backend == "torch" else "auto")
    n_expr = model.config.num_expressions
    expr, pose, verts = (
        read_expressions(cfg.expressions, n_expr)
        if cfg.expressions
        else (*demo_sequence(cfg.frames, n_expr), None)
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
    focal = 1.35 * cfg.size
    stages = NO_STAGES if cfg.compile else Stages()

    def frame(i):
        img, _ = render_frame(
            model,
            torch.from_numpy(expr[i]).to(device),
            torch.from_numpy(pose[i]).to(device),
            verts[i],
            c2w,
            focal,
            cfg.size,
            index,
            neighbour,
            cfg.num_samples,
            stages=stages,
            backend=cfg.backend,
        )
        return (img.clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)

    t0 = time.perf_counter()
    frame(0)  # warm-up, not timed: compiles the field (--compile) or loads the CPU kernels
    if not cfg.compile:
        stages.seconds.clear()
    print(f"warm-up frame: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    frames = []
    t0 = time.perf_counter()
    for i in tqdm(range(len(expr)), desc="render", unit="frame"):
        frames.append(frame(i))
    seconds = time.perf_counter() - t0
    write_video(out, frames, cfg.fps)
    ms = {k: 1000 * v / len(frames) for k, v in stages.seconds.items()} if not cfg.compile else None
    return {"path": out, "frames": len(frames), "fps": len(frames) / seconds, "stage_ms": ms}
