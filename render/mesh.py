"""Mesh export of a density field by marching cubes (scikit-image), written through trimesh."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from genkit.utils import GenkitError, atomic_file

__all__ = ["extract_mesh", "save_mesh"]


@torch.no_grad()
def extract_mesh(
    density_fn: Callable[[torch.Tensor], torch.Tensor],
    aabb,
    resolution: int = 128,
    threshold: float = 10.0,
    chunk: int = 65536,
    device: str | torch.device = "cpu",
):
    """The ``threshold`` level set of ``density_fn`` (world points (N, 3) on ``device`` -> (N,)) inside
    ``aabb`` as a ``trimesh.Trimesh`` in world coordinates. Raises GenkitError if the level set is empty."""
    import trimesh
    from skimage.measure import marching_cubes

    if resolution < 2:
        raise GenkitError(f"mesh resolution must be at least 2, got {resolution}")
    a = torch.as_tensor(aabb, dtype=torch.float32)
    axes = [torch.linspace(float(a[i]), float(a[i + 3]), resolution) for i in range(3)]
    pts = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    dens = torch.cat(
        [
            density_fn(pts[i : i + chunk].to(device)).reshape(-1).float().cpu()
            for i in range(0, len(pts), chunk)
        ]
    )
    vol = dens.reshape(resolution, resolution, resolution).numpy()
    if not np.isfinite(vol).all():
        raise GenkitError("the field's density has non-finite values; cannot extract a mesh")
    if vol.max() <= threshold or vol.min() >= threshold:
        raise GenkitError(
            f"no surface: the density lies in [{vol.min():.3g}, {vol.max():.3g}], never crossing the threshold "
            f"{threshold:g} (try another --threshold)"
        )
    verts, faces, normals, _ = marching_cubes(vol, level=threshold)
    scale = (a[3:] - a[:3]).numpy() / (resolution - 1)
    verts = verts * scale + a[:3].numpy()
    return trimesh.Trimesh(vertices=verts, faces=faces, vertex_normals=normals, process=False)


def save_mesh(mesh, path: str | Path) -> Path:
    """Write ``.ply``, ``.obj`` or ``.glb`` atomically."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in (".ply", ".obj", ".glb"):
        raise GenkitError(f"mesh output must end in .ply, .obj or .glb, got {str(path)!r}")
    if len(mesh.faces) == 0:
        raise GenkitError("the mesh has no faces")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        data = mesh.export(file_type=ext[1:])  # obj comes back as text, ply and glb as bytes
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    return path
