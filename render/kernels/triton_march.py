"""Triton kernel of the occupancy-grid march: for every ray and every constant step between its entry and
exit of the box, whether the step's midpoint lies in an occupied cell of a single-level grid. The torch
reference is ``OccGridEstimator.sampling`` (its ``_march`` + ``occupied``); tests check parity on the CPU
with ``TRITON_INTERPRET=1``. One program handles ``BLOCK_R`` rays for ``BLOCK_S`` consecutive steps.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _march_kernel(
    o_ptr, d_ptr, tn_ptr, tf_ptr, grid_ptr, mask_ptr,
    n_rays, n_steps, step, res,
    xmin, ymin, zmin, xmax, ymax, zmax,
    BLOCK_R: tl.constexpr, BLOCK_S: tl.constexpr,
):  # fmt: skip
    pr = tl.program_id(0)
    ps = tl.program_id(1)
    rays = pr * BLOCK_R + tl.arange(0, BLOCK_R)
    steps = ps * BLOCK_S + tl.arange(0, BLOCK_S)
    rmask = rays < n_rays
    ox = tl.load(o_ptr + rays * 3 + 0, mask=rmask, other=0.0)
    oy = tl.load(o_ptr + rays * 3 + 1, mask=rmask, other=0.0)
    oz = tl.load(o_ptr + rays * 3 + 2, mask=rmask, other=0.0)
    dx = tl.load(d_ptr + rays * 3 + 0, mask=rmask, other=0.0)
    dy = tl.load(d_ptr + rays * 3 + 1, mask=rmask, other=0.0)
    dz = tl.load(d_ptr + rays * 3 + 2, mask=rmask, other=0.0)
    tn = tl.load(tn_ptr + rays, mask=rmask, other=0.0)
    tf = tl.load(tf_ptr + rays, mask=rmask, other=0.0)
    t0 = tn[:, None] + step * steps[None, :].to(tl.float32)  # (BLOCK_R, BLOCK_S)
    t1 = tl.minimum(t0 + step, tf[:, None])
    valid = (t0 < tf[:, None]) & rmask[:, None] & (steps[None, :] < n_steps)
    tm = (t0 + t1) * 0.5
    px = ox[:, None] + dx[:, None] * tm
    py = oy[:, None] + dy[:, None] * tm
    pz = oz[:, None] + dz[:, None] * tm
    inside = (px >= xmin) & (px < xmax) & (py >= ymin) & (py < ymax) & (pz >= zmin) & (pz < zmax)
    resf = res.to(tl.float32)
    ux = tl.minimum(tl.maximum((px - xmin) / (xmax - xmin), 0.0), 1.0 - 1e-6)
    uy = tl.minimum(tl.maximum((py - ymin) / (ymax - ymin), 0.0), 1.0 - 1e-6)
    uz = tl.minimum(tl.maximum((pz - zmin) / (zmax - zmin), 0.0), 1.0 - 1e-6)
    ix = (ux * resf).to(tl.int32)
    iy = (uy * resf).to(tl.int32)
    iz = (uz * resf).to(tl.int32)
    cell = (ix * res + iy) * res + iz
    occ = tl.load(grid_ptr + cell, mask=valid & inside, other=0)
    keep = valid & inside & (occ != 0)
    out = rays[:, None].to(tl.int64) * n_steps + steps[None, :]
    tl.store(mask_ptr + out, keep.to(tl.int8), mask=rmask[:, None] & (steps[None, :] < n_steps))


def march_occupancy_triton(rays_o, rays_d, t_near, t_far, step: float, n_steps: int, binaries, aabb):
    """(n_rays, n_steps) bool: step k of ray i (from ``t_near + k step``) is before ``t_far`` and its
    midpoint is in an occupied cell of ``binaries`` (res, res, res) over ``aabb``."""
    n = rays_o.shape[0]
    res = binaries.shape[0]
    mask = torch.zeros(n, n_steps, dtype=torch.int8, device=rays_o.device)
    if n == 0 or n_steps == 0:
        return mask.bool()
    a = [float(v) for v in aabb]
    grid = (triton.cdiv(n, 16), triton.cdiv(n_steps, 64))
    _march_kernel[grid](
        rays_o.contiguous().float(), rays_d.contiguous().float(), t_near.contiguous().float(),
        t_far.contiguous().float(), binaries.contiguous().view(-1).to(torch.int8), mask,
        n, n_steps, float(step), res, *a, BLOCK_R=16, BLOCK_S=64,
    )  # fmt: skip
    return mask.bool()
