"""Camera and mesh geometry shared by the neural fields and the avatars.

Cameras are pinholes in the OpenGL / NeRF convention: a camera-to-world matrix ``c2w`` (4, 4) whose camera
looks down its -z with y up; a pixel (x, y) (x right, y down, centres at +0.5) of a ``width`` x ``height``
image with focal length ``focal`` (pixels) sees the direction ``((x - width / 2) / focal,
-(y - height / 2) / focal, -1)`` in camera space. ``genkit.render.raster.rasterize`` projects with the
same convention.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["camera_rays", "euler", "look_at", "orbit_poses", "unit", "vertex_normals"]


def unit(v):
    """``v`` (..., 3) numpy array scaled to unit length along its last axis."""
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def camera_rays(c2w: torch.Tensor, focal: float, width: int, height: int, pixels: torch.Tensor | None = None):
    """World-space (origins, unit directions) through pixel centres: of one camera ``c2w`` (4, 4), at all
    pixels (H*W, 3) in row-major order or at the (x, y) integer ``pixels`` (N, 2); or of one camera per
    pixel, ``c2w`` (N, 4, 4) with ``pixels`` (N, 2)."""
    if c2w.dim() == 3:
        return _camera_rays_per_pixel(c2w, focal, width, height, pixels)
    if pixels is None:
        dev = c2w.device
        y, x = torch.meshgrid(
            torch.arange(height, device=dev), torch.arange(width, device=dev), indexing="ij"
        )
        pixels = torch.stack([x.reshape(-1), y.reshape(-1)], -1)
    d = _directions(pixels, focal, width, height) @ c2w[:3, :3].T
    d = d / d.norm(dim=-1, keepdim=True)
    return c2w[:3, 3].expand_as(d), d


def _directions(pixels: torch.Tensor, focal: float, width: int, height: int) -> torch.Tensor:
    """Camera-space directions (N, 3), not normalised, through the centres of integer ``pixels`` (N, 2)."""
    px = pixels.float() + 0.5
    return torch.stack(
        [
            (px[:, 0] - width / 2) / focal,
            -(px[:, 1] - height / 2) / focal,
            -torch.ones(len(px), device=px.device),
        ],
        -1,
    )


def _camera_rays_per_pixel(c2w: torch.Tensor, focal: float, width: int, height: int, xy: torch.Tensor):
    """Rays of pixels ``xy`` (N, 2) of cameras ``c2w`` (N, 4, 4)."""
    d = torch.einsum("nij,nj->ni", c2w[:, :3, :3], _directions(xy, focal, width, height))
    return c2w[:, :3, 3], d / d.norm(dim=-1, keepdim=True)


def look_at(eye, target=(0.0, 0.0, 0.0), up=(0.0, 1.0, 0.0)) -> np.ndarray:
    """Camera-to-world (4, 4) in the OpenGL/NeRF convention (the camera looks down its -z)."""
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    back = unit(eye - target)
    right = unit(np.cross(up, back))
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, np.cross(back, right), back, eye
    return m.astype(np.float32)


def orbit_poses(n: int, radius: float = 4.0, elevation_deg: float = 30.0) -> torch.Tensor:
    """``n`` camera-to-world matrices on a circle around the origin, looking at it (OpenGL, z up world)."""
    poses = []
    el = math.radians(elevation_deg)
    for i in range(n):
        az = 2 * math.pi * i / n
        eye = torch.tensor(
            [
                radius * math.cos(el) * math.cos(az),
                radius * math.cos(el) * math.sin(az),
                radius * math.sin(el),
            ]
        )
        back = eye / eye.norm()  # camera +z points away from the target
        right = torch.linalg.cross(torch.tensor([0.0, 0.0, 1.0]), back)
        right = right / right.norm()
        up = torch.linalg.cross(back, right)
        c2w = torch.eye(4)
        c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, up, back, eye
        poses.append(c2w)
    return torch.stack(poses)


def euler(pose) -> np.ndarray:
    """Rotation matrix of (yaw about y, pitch about x, roll about z), applied as R @ v."""
    yaw, pitch, roll = (float(a) for a in pose)
    cy, sy, cp, sp, cr, sr = (
        math.cos(yaw),
        math.sin(yaw),
        math.cos(pitch),
        math.sin(pitch),
        math.cos(roll),
        math.sin(roll),
    )
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return (ry @ rx @ rz).astype(np.float32)


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted unit vertex normals (..., V, 3) of a triangle mesh."""
    a, b, c = (vertices[..., faces[:, i], :] for i in range(3))
    fn = torch.cross(b - a, c - a, dim=-1)
    n = torch.zeros_like(vertices).index_add_(-2, faces.reshape(-1), fn.repeat_interleave(3, dim=-2))
    return torch.nn.functional.normalize(n, dim=-1)
