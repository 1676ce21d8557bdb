"""Packed volume rendering (render/volume.py): closed forms, packed = batched, gradients."""

import math

import torch

from genkit.render.volume import (
    accumulate_along_rays,
    exclusive_sum_packed,
    pack_batched,
    render_weight_from_density,
    rendering,
)


def test_constant_density_slab_has_the_closed_form_transmittance():
    """A slab of density s from t=1 to t=2: T(t) = exp(-s (t - 1)), opacity 1 - exp(-s)."""
    s, per_unit = 3.0, 400
    k = torch.arange(3 * per_unit + 1, dtype=torch.float64)
    edges = k / per_unit
    t0, t1 = edges[:-1][None], edges[1:][None]
    inside = (k[:-1] >= per_unit) & (k[:-1] < 2 * per_unit)
    sig = torch.where(inside, s, 0.0)[None]
    w, trans, _ = render_weight_from_density(t0, t1, sig)
    expected = torch.exp(-s * (t0 - 1).clamp(0, 1))
    torch.testing.assert_close(trans, expected, atol=1e-9, rtol=1e-9)
    opacity = accumulate_along_rays(w)
    assert math.isclose(opacity.item(), 1 - math.exp(-s), rel_tol=1e-9)
    depth = accumulate_along_rays(w, ((t0 + t1) / 2)[..., None])
    # expected depth of the slab: int_1^2 t s e^{-s(t-1)} dt
    exact = (1 - math.exp(-s)) + (1 - (1 + s) * math.exp(-s)) / s
    assert math.isclose(depth.item(), exact, rel_tol=1e-5)


def test_packed_equals_batched_with_ragged_rays():
    g = torch.Generator().manual_seed(0)
    n_rays, n_samples = 5, 7
    t = torch.sort(torch.rand(n_rays, n_samples + 1, generator=g) * 4, dim=1).values
    t0, t1 = t[:, :-1], t[:, 1:]
    sig = torch.rand(n_rays, n_samples, generator=g) * 3
    rgb = torch.rand(n_rays, n_samples, 3, generator=g)
    mask = torch.rand(n_rays, n_samples, generator=g) > 0.3
    mask[2] = False  # a ray with no samples
    # masked-out samples contribute nothing in batched form when their density is 0
    w_b, _, _ = render_weight_from_density(t0, t1, sig * mask)
    col_b = accumulate_along_rays(w_b, rgb)
    rays, s0, s1 = pack_batched(t0, t1, mask)
    w_p, _, _ = render_weight_from_density(s0, s1, sig[mask], rays, n_rays)
    col_p = accumulate_along_rays(w_p, rgb[mask], rays, n_rays)
    torch.testing.assert_close(col_p, col_b)
    torch.testing.assert_close(w_p, w_b[mask])
    assert col_p[2].abs().sum() == 0


def test_exclusive_sum_packed():
    v = torch.tensor([1.0, 2, 3, 4, 5, 6])
    rays = torch.tensor([0, 0, 0, 2, 2, 3])
    torch.testing.assert_close(exclusive_sum_packed(v, rays, 4), torch.tensor([0.0, 1, 3, 0, 4, 0]))
    assert exclusive_sum_packed(torch.zeros(0), torch.zeros(0, dtype=torch.long), 3).numel() == 0


def test_rendering_gradients_by_gradcheck():
    g = torch.Generator().manual_seed(1)
    rays = torch.tensor([0, 0, 0, 1, 1])
    t0 = torch.tensor([0.0, 0.2, 0.5, 0.1, 0.4], dtype=torch.float64)
    t1 = torch.tensor([0.2, 0.5, 0.9, 0.4, 0.8], dtype=torch.float64)
    sig = (torch.rand(5, generator=g, dtype=torch.float64) * 2).requires_grad_()
    rgb = torch.rand(5, 3, generator=g, dtype=torch.float64).requires_grad_()
    bg = torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64)

    def f(sig, rgb):
        colour, opacity, depth, _ = rendering(t0, t1, rays, 2, lambda a, b, r: (rgb, sig), background=bg)
        return colour, opacity, depth

    assert torch.autograd.gradcheck(f, (sig, rgb))
