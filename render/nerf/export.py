"""What a trained field gives a user: a turntable video (``genkit nerf render``) and a mesh of its density's
level set (``genkit nerf mesh``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from genkit.render.geometry import orbit_poses
from genkit.render.mesh import extract_mesh, save_mesh
from genkit.render.nerf.trainer import load_field, render_image
from genkit.utils import VIDEO, GenkitError, atomic_file, output_file, write_video

__all__ = ["NerfMeshConfig", "NerfRenderConfig", "export_mesh", "render_turntable"]

BLENDER_FOV_X = 0.6911  # the NeRF-synthetic camera's horizontal field of view (radians)


@dataclass
class NerfRenderConfig:
    checkpoint: str = field(default="", metadata={"help": "RUN folder or its model.safetensors"})
    out: str = field(default="outputs/turntable.mp4", metadata={"help": "video path (.mp4 or .gif)"})
    frames: int = field(default=36, metadata={"help": "frames of the orbit"})
    size: int = field(default=100, metadata={"help": "frame width and height in pixels"})
    radius: float = field(default=4.0, metadata={"help": "camera distance from the origin"})
    elevation: float = field(default=30.0, metadata={"help": "camera elevation in degrees"})
    fps: int = field(default=12, metadata={"help": "frames per second"})
    device: str = field(default="auto", metadata={"help": "'auto' (CUDA if available), 'cpu', 'cuda:1', ..."})

    def __post_init__(self):
        if not self.checkpoint:
            raise GenkitError("--checkpoint is required (a genkit nerf train run folder)")
        if self.frames <= 0 or self.size <= 0 or self.fps <= 0:
            raise GenkitError("--frames, --size and --fps must be positive")


@dataclass
class NerfMeshConfig:
    checkpoint: str = field(default="", metadata={"help": "RUN folder or its model.safetensors"})
    out: str = field(default="outputs/mesh.ply", metadata={"help": "mesh path (.ply, .obj or .glb)"})
    resolution: int = field(default=128, metadata={"help": "grid resolution per axis"})
    threshold: float = field(default=10.0, metadata={"help": "density level of the surface"})
    device: str = field(default="auto", metadata={"help": "'auto' (CUDA if available), 'cpu', 'cuda:1', ..."})

    def __post_init__(self):
        if not self.checkpoint:
            raise GenkitError("--checkpoint is required (a genkit nerf train run folder)")


def _load(checkpoint: str, device: str):
    from genkit.loading import resolve_device

    device = resolve_device(device)
    field_, estimator, cfg = load_field(checkpoint)
    return field_.to(device), estimator.to(device), cfg


@torch.no_grad()
def render_turntable(cfg: NerfRenderConfig) -> tuple[Path, Path, int]:
    """Render the orbit; write the video and a PNG strip of 8 of its frames beside it. Returns (video,
    strip, frames)."""
    import imageio.v3 as iio
    from tqdm.auto import tqdm

    out = output_file(cfg.out, VIDEO)
    field_, estimator, train_cfg = _load(cfg.checkpoint, cfg.device)
    focal = 0.5 * cfg.size / np.tan(0.5 * BLENDER_FOV_X)
    frames = []
    poses = orbit_poses(cfg.frames, cfg.radius, cfg.elevation).to(field_.aabb.device)
    for c2w in tqdm(poses, desc="render", unit="frame"):
        img, _ = render_image(field_, estimator, c2w, focal, cfg.size, cfg.size, train_cfg)
        frames.append((img.cpu().numpy() * 255).round().astype(np.uint8))
    write_video(out, frames, cfg.fps)
    strip = out.with_suffix(".png")
    with atomic_file(strip) as tmp:
        iio.imwrite(tmp, np.concatenate(frames[:: max(1, len(frames) // 8)], axis=1), extension=".png")
    return out, strip, len(frames)


def export_mesh(cfg: NerfMeshConfig):
    """The density's ``threshold`` level set inside the field's box, written to ``cfg.out``. Returns (path,
    mesh)."""
    field_, _, _ = _load(cfg.checkpoint, cfg.device)
    aabb = field_.aabb
    mesh = extract_mesh(field_.density, aabb.tolist(), cfg.resolution, cfg.threshold, device=aabb.device)
    return save_mesh(mesh, cfg.out), mesh
