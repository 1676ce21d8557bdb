"""Sample estimators: where along each ray to evaluate the field. The torch reference.

Both take the field as a callback, as nerfacc does, and return packed samples
``(ray_indices, t_starts, t_ends)`` sorted by ray and distance (see ``volume.py``).

- ``uniform_sampling``: fixed steps of ``render_step_size`` through the scene's box; the baseline.
- ``OccGridEstimator``: the same march, keeping only samples in occupied cells of a multi-level binary
  occupancy grid (level ``l`` covers the box scaled by ``2^l`` about its centre), then dropping samples
  whose opacity is below ``alpha_thre`` or that lie behind a transmittance below ``early_stop_eps``
  (early termination), with optional cone stepping (step ``clamp(t * cone_angle, step, 1e10)``). The grid
  is kept by ``update_every_n_steps`` as nerfacc's ``OccGridEstimator``: EMA of the field's occupancy at
  jittered cell positions, every cell during warm-up then a quarter of the cells plus the occupied ones,
  thresholded at ``min(mean occupancy, occ_thre)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from genkit.render.backends import check_backend, use_triton
from genkit.render.volume import render_weight_from_density

__all__ = ["OccGridEstimator", "ray_aabb_intersect", "uniform_sampling"]


def ray_aabb_intersect(rays_o: torch.Tensor, rays_d: torch.Tensor, aabb: torch.Tensor):
    """(t_near, t_far, hit) of rays against the box ``aabb = [xmin, ymin, zmin, xmax, ymax, zmax]``;
    t_near is clamped at 0 (rays starting inside the box)."""
    inv = 1.0 / torch.where(rays_d.abs() < 1e-12, torch.full_like(rays_d, 1e-12), rays_d)
    t0 = (aabb[:3] - rays_o) * inv
    t1 = (aabb[3:] - rays_o) * inv
    t_near = torch.minimum(t0, t1).amax(-1).clamp_min(0)
    t_far = torch.maximum(t0, t1).amin(-1)
    return t_near, t_far, t_far > t_near


def _march(t_near, t_far, step: float, cone_angle: float, offset: torch.Tensor | None):
    """Batched candidate intervals (n_rays, n_steps) from t_near to t_far; padding has t_start = inf."""
    n = t_near.shape[0]
    t = t_near + (offset * step if offset is not None else 0.0)
    if cone_angle <= 0:  # constant steps: all at once
        k = int(torch.ceil(((t_far - t) / step).clamp_min(0).max()).item()) if n else 0
        starts = t[:, None] + step * torch.arange(k, device=t.device, dtype=t.dtype)
        active = starts < t_far[:, None]
        ends = torch.minimum(starts + step, t_far[:, None])
        inf = torch.full_like(starts, float("inf"))
        return torch.where(active, starts, inf), torch.where(active, ends, inf)
    starts, ends = [], []
    active = t < t_far
    while bool(active.any()):
        dt = (t * cone_angle).clamp(step, 1e10) if cone_angle > 0 else torch.full_like(t, step)
        end = torch.minimum(t + dt, t_far)
        starts.append(torch.where(active, t, torch.full_like(t, float("inf"))))
        ends.append(torch.where(active, end, torch.full_like(t, float("inf"))))
        t = t + dt
        active = active & (t < t_far)
    if not starts:
        empty = t_near.new_zeros(n, 0)
        return empty, empty
    return torch.stack(starts, 1), torch.stack(ends, 1)


def _packed(t_starts, t_ends, mask):
    rays = torch.arange(t_starts.shape[0], device=t_starts.device)[:, None].expand_as(t_starts)
    return rays[mask], t_starts[mask], t_ends[mask]


@torch.no_grad()
def uniform_sampling(
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    aabb: torch.Tensor,
    render_step_size: float,
    near_plane: float = 0.0,
    far_plane: float = 1e10,
    stratified: bool = False,
    generator: torch.Generator | None = None,
):
    """Every ``render_step_size`` step inside ``aabb`` (and the near/far planes): packed samples."""
    t_near, t_far, hit = ray_aabb_intersect(rays_o, rays_d, aabb)
    t_near = t_near.clamp_min(near_plane)
    t_far = torch.where(hit, t_far.clamp_max(far_plane), t_near)
    offset = torch.rand(t_near.shape, generator=generator, device=t_near.device) if stratified else None
    s, e = _march(t_near, t_far, render_step_size, 0.0, offset)
    return _packed(s, e, torch.isfinite(s))


class OccGridEstimator(nn.Module):
    def __init__(self, roi_aabb, resolution: int = 128, levels: int = 1, backend: str = "auto"):
        super().__init__()
        check_backend(backend, ("auto", "torch", "triton"))
        self.backend = backend
        if resolution < 1 or levels < 1:
            raise ValueError("resolution and levels must be positive")
        roi = torch.as_tensor(roi_aabb, dtype=torch.float32)
        if roi.shape != (6,) or not bool((roi[3:] > roi[:3]).all()):
            raise ValueError(f"roi_aabb must be [xmin, ymin, zmin, xmax, ymax, zmax], got {roi.tolist()}")
        self.resolution, self.levels = resolution, levels
        center, half = (roi[:3] + roi[3:]) / 2, (roi[3:] - roi[:3]) / 2
        aabbs = torch.stack(
            [torch.cat([center - half * 2**lvl, center + half * 2**lvl]) for lvl in range(levels)]
        )
        self.register_buffer("aabbs", aabbs)  # (levels, 6)
        self.register_buffer("occs", torch.zeros(levels, resolution**3))
        self.register_buffer(
            "binaries", torch.zeros(levels, resolution, resolution, resolution, dtype=torch.bool)
        )

    # -- grid lookup ----------------------------------------------------------------------------------
    def cell_of(self, x: torch.Tensor):
        """(level, flat cell index, inside any level) of points ``x`` (N, 3): the finest level holding x."""
        r = self.resolution
        level = torch.full(x.shape[:1], self.levels, dtype=torch.long, device=x.device)
        for lvl in reversed(range(self.levels)):
            a = self.aabbs[lvl]
            inside = ((x >= a[:3]) & (x < a[3:])).all(-1)
            level = torch.where(inside, lvl, level)
        inside = level < self.levels
        lv = level.clamp(max=self.levels - 1)
        a = self.aabbs[lv]
        u = ((x - a[:, :3]) / (a[:, 3:] - a[:, :3])).clamp(0, 1 - 1e-6)
        ijk = (u * r).long()
        return lv, (ijk[:, 0] * r + ijk[:, 1]) * r + ijk[:, 2], inside

    def occupied(self, x: torch.Tensor) -> torch.Tensor:
        lv, idx, inside = self.cell_of(x)
        return self.binaries.view(self.levels, -1)[lv, idx] & inside

    def use_triton(self, device, cone_angle: float = 0.0) -> bool:
        """Whether the Triton march runs (``genkit.render.backends.use_triton``): it serves single-level grids
        with constant steps; elsewhere the torch march runs whatever the backend."""
        return use_triton(device, self.backend) and self.levels == 1 and cone_angle <= 0

    # -- sampling -------------------------------------------------------------------------------------
    @torch.no_grad()
    def sampling(
        self,
        rays_o: torch.Tensor,
        rays_d: torch.Tensor,
        sigma_fn: Callable | None = None,
        near_plane: float = 0.0,
        far_plane: float = 1e10,
        render_step_size: float = 1e-3,
        early_stop_eps: float = 1e-4,
        alpha_thre: float = 0.0,
        stratified: bool = False,
        cone_angle: float = 0.0,
        generator: torch.Generator | None = None,
    ):
        """Packed ``(ray_indices, t_starts, t_ends)`` in occupied cells; with ``sigma_fn(t_starts, t_ends,
        ray_indices) -> sigmas`` also skip transparent samples and those behind an opaque part."""
        t_near, t_far, hit = ray_aabb_intersect(rays_o, rays_d, self.aabbs[-1])
        t_near = t_near.clamp_min(near_plane)
        t_far = torch.where(hit, t_far.clamp_max(far_plane), t_near)
        offset = torch.rand(t_near.shape, generator=generator, device=t_near.device) if stratified else None
        if self.use_triton(rays_o.device, cone_angle):
            from genkit.render.kernels.triton_march import march_occupancy_triton

            t = t_near + (offset * render_step_size if offset is not None else 0.0)
            k = int(torch.ceil(((t_far - t) / render_step_size).clamp_min(0).max()).item()) if len(t) else 0
            s = t[:, None] + render_step_size * torch.arange(k, device=t.device, dtype=t.dtype)
            e = torch.minimum(s + render_step_size, t_far[:, None])
            keep = march_occupancy_triton(
                rays_o, rays_d, t, t_far, render_step_size, k, self.binaries[0], self.aabbs[0]
            )
        else:
            s, e = _march(t_near, t_far, render_step_size, cone_angle, offset)
            valid = torch.isfinite(s)
            mid = rays_o[:, None, :] + rays_d[:, None, :] * ((s + e) / 2).nan_to_num(0, 0, 0)[..., None]
            keep = valid.clone()
            keep[valid] = self.occupied(mid[valid])
        rays, t0, t1 = _packed(s, e, keep)
        if sigma_fn is None or rays.numel() == 0 or (alpha_thre <= 0 and early_stop_eps <= 0):
            return rays, t0, t1
        sigmas = sigma_fn(t0, t1, rays)
        _, trans, alphas = render_weight_from_density(t0, t1, sigmas, rays, rays_o.shape[0])
        mask = (alphas >= alpha_thre) & (trans >= early_stop_eps)
        return rays[mask], t0[mask], t1[mask]

    # -- grid update ----------------------------------------------------------------------------------
    def _cells_to_update(self, warmup: bool, generator) -> list[torch.Tensor]:
        r3 = self.resolution**3
        dev = self.occs.device
        if warmup:
            return [torch.arange(r3, device=dev) for _ in range(self.levels)]
        out = []
        for lvl in range(self.levels):
            uniform = torch.randint(0, r3, (r3 // 4,), generator=generator, device=dev)
            occupied = self.binaries[lvl].view(-1).nonzero()[:, 0]
            if occupied.numel() > r3 // 4:
                occupied = occupied[
                    torch.randperm(occupied.numel(), generator=generator, device=dev)[: r3 // 4]
                ]
            out.append(torch.cat([uniform, occupied]))
        return out

    @torch.no_grad()
    def update_every_n_steps(
        self,
        step: int,
        occ_eval_fn: Callable[[torch.Tensor], torch.Tensor],
        occ_thre: float = 1e-2,
        ema_decay: float = 0.95,
        warmup_steps: int = 256,
        n: int = 16,
        generator: torch.Generator | None = None,
    ) -> bool:
        """Every ``n`` steps, refresh the grid from ``occ_eval_fn(x) -> occupancy (N,)`` (nerfacc's
        convention: density times the render step). Returns whether it updated."""
        if step % n != 0:
            return False
        r = self.resolution
        for lvl, idx in enumerate(self._cells_to_update(step < warmup_steps, generator)):
            ijk = torch.stack([idx // (r * r), (idx // r) % r, idx % r], -1).float()
            u = (ijk + torch.rand(ijk.shape, generator=generator, device=ijk.device)) / r
            a = self.aabbs[lvl]
            x = a[:3] + u * (a[3:] - a[:3])
            occ = occ_eval_fn(x).reshape(-1).float()
            cur = self.occs[lvl]
            cur[idx] = torch.maximum(cur[idx] * ema_decay, occ)
        thre = min(float(self.occs.mean()), occ_thre)
        self.binaries.copy_((self.occs > thre).view_as(self.binaries))
        return True
