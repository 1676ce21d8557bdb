"""Volume rendering of packed or batched samples along rays: the torch reference.

Packed samples (nerfacc's layout) are flat tensors ``t_starts``, ``t_ends`` (N,) with ``ray_indices``
(N,) giving the ray of each sample, sorted by ray and, within a ray, by distance. Batched samples are
(n_rays, n_samples) tensors; ``pack_batched`` turns them into the packed layout. Every function is
differentiable with respect to the densities and the values.

For a sample i with density ``sigma_i`` over the interval ``[t_i, t_i + delta_i)``::

    alpha_i = 1 - exp(-sigma_i delta_i)
    T_i     = prod_{j < i on the same ray} (1 - alpha_j) = exp(-sum_{j < i} sigma_j delta_j)
    w_i     = T_i alpha_i

and a ray accumulates ``sum_i w_i v_i`` of any per-sample value ``v`` (colour, depth, 1 for opacity).
"""

from __future__ import annotations

import torch

__all__ = [
    "accumulate_along_rays",
    "exclusive_sum_packed",
    "pack_batched",
    "render_weight_from_density",
    "rendering",
]


def exclusive_sum_packed(values: torch.Tensor, ray_indices: torch.Tensor, n_rays: int) -> torch.Tensor:
    """Per-ray exclusive prefix sum of packed ``values`` (N,): for each sample, the sum of the earlier
    samples of its ray."""
    if values.numel() == 0:
        return values.clone()
    inclusive = torch.cumsum(values, dim=0)
    ray_total = torch.zeros(n_rays, dtype=values.dtype, device=values.device).index_add_(
        0, ray_indices, values
    )
    ray_offset = torch.cumsum(ray_total, dim=0) - ray_total  # sum of all earlier rays
    return inclusive - values - ray_offset[ray_indices]


def render_weight_from_density(
    t_starts: torch.Tensor,
    t_ends: torch.Tensor,
    sigmas: torch.Tensor,
    ray_indices: torch.Tensor | None = None,
    n_rays: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(weights, transmittance before each sample, alphas), packed (with ``ray_indices``) or batched
    ((n_rays, n_samples) inputs, no ``ray_indices``)."""
    sigma_delta = sigmas * (t_ends - t_starts)
    if ray_indices is None:
        excl = torch.cumsum(sigma_delta, dim=-1) - sigma_delta
    else:
        n = int(ray_indices.max()) + 1 if n_rays is None and ray_indices.numel() else (n_rays or 0)
        excl = exclusive_sum_packed(sigma_delta, ray_indices, n)
    trans = torch.exp(-excl)
    alphas = 1 - torch.exp(-sigma_delta)
    return trans * alphas, trans, alphas


def accumulate_along_rays(
    weights: torch.Tensor,
    values: torch.Tensor | None = None,
    ray_indices: torch.Tensor | None = None,
    n_rays: int | None = None,
) -> torch.Tensor:
    """``sum_i w_i v_i`` per ray: (n_rays, C) (``values`` (N, C) or (n_rays, n_samples, C)), or the
    opacity (n_rays, 1) when ``values`` is None."""
    if values is None:
        values = torch.ones_like(weights)[..., None]
    if ray_indices is None:
        return (weights[..., None] * values).sum(dim=-2)
    if n_rays is None:
        raise ValueError("packed accumulation needs n_rays")
    out = torch.zeros(n_rays, values.shape[-1], dtype=values.dtype, device=values.device)
    return out.index_add(0, ray_indices, weights[:, None] * values)


def pack_batched(t_starts: torch.Tensor, t_ends: torch.Tensor, mask: torch.Tensor | None = None):
    """Batched (n_rays, n_samples) intervals -> packed (ray_indices, t_starts, t_ends), keeping the
    samples where ``mask`` is True (all by default)."""
    n_rays, n_samples = t_starts.shape
    if mask is None:
        mask = torch.ones_like(t_starts, dtype=torch.bool)
    rays = torch.arange(n_rays, device=t_starts.device)[:, None].expand(n_rays, n_samples)
    return rays[mask], t_starts[mask], t_ends[mask]


def rendering(
    t_starts: torch.Tensor,
    t_ends: torch.Tensor,
    ray_indices: torch.Tensor,
    n_rays: int,
    rgb_sigma_fn,
    background: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict]:
    """Render packed samples: ``rgb_sigma_fn(t_starts, t_ends, ray_indices) -> (rgb (N, 3), sigma (N,))``
    is the field, as a callback. Returns (colour (n_rays, 3), opacity (n_rays, 1), depth (n_rays, 1),
    extras with the per-sample weights). ``background`` (3,) or (n_rays, 3) fills the transparent part."""
    rgbs, sigmas = rgb_sigma_fn(t_starts, t_ends, ray_indices)
    weights, trans, alphas = render_weight_from_density(t_starts, t_ends, sigmas, ray_indices, n_rays)
    colour = accumulate_along_rays(weights, rgbs, ray_indices, n_rays)
    opacity = accumulate_along_rays(weights, None, ray_indices, n_rays)
    depth = accumulate_along_rays(weights, ((t_starts + t_ends) / 2)[:, None], ray_indices, n_rays)
    if background is not None:
        colour = colour + (1 - opacity) * background
    return colour, opacity, depth, {"weights": weights, "transmittance": trans, "alphas": alphas}
