"""Estimators (render/estimators.py): empty grid, a sphere's occupancy, early termination, uniform march."""

import torch

from genkit.render.estimators import OccGridEstimator, ray_aabb_intersect, uniform_sampling

AABB = [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0]


def rays_towards_origin(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    o = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=-1) * 3
    target = (torch.rand(n, 3, generator=g) - 0.5) * 0.4
    return o, torch.nn.functional.normalize(target - o, dim=-1)


def sphere_occ(radius=0.5):
    return lambda x: (x.norm(dim=-1) < radius).float()


def test_ray_aabb_intersect():
    o = torch.tensor([[-3.0, 0, 0], [0, 0, 0], [-3.0, 5, 0]])
    d = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [1.0, 0, 0]])
    t0, t1, hit = ray_aabb_intersect(o, d, torch.tensor(AABB))
    torch.testing.assert_close(t0[:2], torch.tensor([2.0, 0.0]))
    torch.testing.assert_close(t1[:2], torch.tensor([4.0, 1.0]))
    assert hit.tolist() == [True, True, False]


def test_empty_grid_yields_no_samples():
    est = OccGridEstimator(AABB, resolution=16)
    o, d = rays_towards_origin(64)
    rays, t0, t1 = est.sampling(o, d, render_step_size=0.01)
    assert rays.numel() == t0.numel() == t1.numel() == 0


def test_sphere_occupancy_marks_the_right_cells():
    r = 16
    est = OccGridEstimator(AABB, resolution=r)
    assert est.update_every_n_steps(
        0, sphere_occ(), occ_thre=0.5, warmup_steps=10, n=1, generator=torch.Generator().manual_seed(0)
    )
    ijk = torch.stack(torch.meshgrid(*[torch.arange(r)] * 3, indexing="ij"), -1).reshape(-1, 3).float()
    centres = -1 + (ijk + 0.5) * 2 / r
    dist = centres.norm(dim=-1)
    half_diag = (3**0.5) / r
    occ = est.binaries.view(-1)
    assert occ[dist < 0.5 - half_diag].all()
    assert not occ[dist > 0.5 + half_diag].any()
    # the occupancy of a point is its cell's
    assert est.occupied(torch.zeros(1, 3)).item() and not est.occupied(torch.full((1, 3), 0.9)).item()
    assert not est.occupied(torch.full((1, 3), 1.5)).item()  # outside the grid


def test_occupancy_sampling_keeps_only_the_sphere_and_stops_early():
    est = OccGridEstimator(AABB, resolution=32)
    est.update_every_n_steps(0, sphere_occ(), occ_thre=0.5, n=1)
    o, d = rays_towards_origin(128)
    step = 0.01
    rays_u, _, _ = uniform_sampling(o, d, torch.tensor(AABB), step)
    rays, t0, t1 = est.sampling(o, d, render_step_size=step)
    assert rays.numel() > 0 and rays.numel() * 2 < rays_u.numel()
    mid = o[rays] + d[rays] * ((t0 + t1) / 2)[:, None]
    assert mid.norm(dim=-1).max() < 0.5 + 2 * 3**0.5 / 32
    assert (t1 > t0).all() and (torch.diff(rays) >= 0).all()

    # an opaque sphere: samples stop soon after the surface (transmittance below 1e-4)
    def sigma_fn(t0, t1, r):
        x = o[r] + d[r] * ((t0 + t1) / 2)[:, None]
        return (x.norm(dim=-1) < 0.5).float() * 1000.0

    rays_e, t0e, _ = est.sampling(
        o, d, sigma_fn=sigma_fn, render_step_size=step, early_stop_eps=1e-4, alpha_thre=1e-3
    )
    assert 0 < rays_e.numel() < rays.numel() / 3
    per_ray = torch.bincount(rays_e, minlength=128)
    assert per_ray.max() <= 4  # 1000 * 0.01 = 10 optical depth per step: opaque after one or two steps


def test_cone_stepping_grows_the_steps():
    est = OccGridEstimator(AABB, resolution=8)
    est.binaries.fill_(True)
    o, d = rays_towards_origin(8)
    r0, a0, b0 = est.sampling(o, d, render_step_size=0.01)
    r1, a1, b1 = est.sampling(o, d, render_step_size=0.01, cone_angle=0.01)
    assert r1.numel() < r0.numel()
    assert ((b1 - a1).max() > 0.02) and torch.allclose((b0 - a0)[:-1].max(), torch.tensor(0.01), atol=1e-5)
