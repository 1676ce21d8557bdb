"""A deterministic z-buffer rasterizer of triangle meshes (perspective-correct barycentrics), in torch, with
a numba loop over the faces that gives the same faces and depths (``genkit.render.kernels.numba_avatar``).
The camera convention is ``genkit.render.geometry``'s."""

from __future__ import annotations

import torch

from genkit.render.backends import use_numba

__all__ = ["rasterize"]


def rasterize(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    c2w: torch.Tensor,
    focal: float,
    size: int,
    backend: str = "torch",
):
    """Z-buffer rasterization of a triangle mesh seen by a pinhole camera (``size`` x ``size`` pixels,
    OpenGL camera ``c2w``). Returns ``face`` (H, W) long (-1 where empty), perspective-correct barycentrics
    (H, W, 3) and camera depth (H, W) (inf where empty). Deterministic: ties go to the larger face index.
    ``backend``: "torch" (the reference: every covered pixel of every face at once, then scatter-min),
    "numba" (a loop over the faces, ``genkit.render.kernels.numba_avatar``; same test, same ties) or "auto"
    (numba for CPU tensors when it is installed). The ground truth and the training data use torch."""
    w2c = torch.linalg.inv(c2w)
    cam = vertices @ w2c[:3, :3].T + w2c[:3, 3]
    depth = -cam[:, 2]
    px = torch.stack([focal * cam[:, 0] / depth + size / 2, -focal * cam[:, 1] / depth + size / 2], -1)
    if use_numba(vertices, backend):
        from genkit.render.kernels import numba_avatar

        face, bc, zbuf = numba_avatar.rasterize(px.float(), depth.float(), faces, size)
        return face.view(size, size), bc.to(vertices.dtype).view(size, size, 3), zbuf.view(size, size)
    tri = px[faces]  # (F, 3, 2)
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    area = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    keep = (area < -1e-9) & (depth[faces] > 1e-3).all(1)  # front-facing in image coordinates (y down)
    fid = torch.nonzero(keep).squeeze(1)
    tri, area = tri[fid], area[fid]
    lo = torch.clamp(torch.ceil(tri.amin(1) - 0.5), 0, size).long()
    hi = torch.clamp(torch.floor(tri.amax(1) - 0.5), -1, size - 1).long()
    nx, ny = (hi[:, 0] - lo[:, 0] + 1).clamp(min=0), (hi[:, 1] - lo[:, 1] + 1).clamp(min=0)
    count = nx * ny
    dev = vertices.device
    which = torch.repeat_interleave(torch.arange(len(fid), device=dev), count)
    local = torch.arange(int(count.sum()), device=dev) - torch.repeat_interleave(
        torch.cumsum(count, 0) - count, count
    )
    ix = lo[which, 0] + local % nx[which]
    iy = lo[which, 1] + torch.div(local, nx[which], rounding_mode="floor")
    p = torch.stack([ix, iy], -1).to(vertices.dtype) + 0.5
    t = tri[which]
    d, u, v = p - t[:, 0], t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]
    b1 = (d[:, 0] * v[:, 1] - d[:, 1] * v[:, 0]) / area[which]
    b2 = (u[:, 0] * d[:, 1] - u[:, 1] * d[:, 0]) / area[which]
    bary = torch.stack([1 - b1 - b2, b1, b2], -1)
    inside = (bary >= -1e-6).all(-1)
    which, ix, iy, bary = which[inside], ix[inside], iy[inside], bary[inside]
    inv_z = 1 / depth[faces[fid[which]]]  # perspective-correct interpolation of 1/z
    z = 1 / (bary * inv_z).sum(-1)
    pix = iy * size + ix
    zbuf = torch.full((size * size,), float("inf"), dtype=z.dtype, device=dev).scatter_reduce(
        0, pix, z, "amin"
    )
    win = z <= zbuf[pix]
    face = torch.full((size * size,), -1, dtype=torch.long, device=dev).scatter_reduce(
        0, pix[win], fid[which[win]], "amax"
    )
    chosen = win & (fid[which] == face[pix])
    bc = torch.zeros(size * size, 3, dtype=vertices.dtype, device=dev)
    bc[pix[chosen]] = bary[chosen] * inv_z[chosen] * z[chosen, None]
    return face.view(size, size), bc.view(size, size, 3), zbuf.view(size, size)
