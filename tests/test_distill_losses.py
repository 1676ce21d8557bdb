"""The distillation losses on 2-D Gaussian mixtures, whose noised densities have exact scores: this
separates distillation error from teacher error (see distill/losses.py)."""

import math

import pytest
import torch
from torch import nn

from genkit.distill.losses import (
    alpha_sigma,
    dmd_gradient,
    dmd_loss,
    fake_score_loss,
    gan_discriminator_loss,
    gan_generator_loss,
    prediction_to_eps,
    prediction_to_x0,
    vsd_loss,
)

T = 1000
ABAR = torch.cumprod(1 - torch.linspace(1e-4, 0.02, T, dtype=torch.float64), 0).float()


def gmm_x0(x_t, alpha, sigma, means, std):
    """Exact E[x0 | x_t] for p0 = mean_k N(means_k, std^2 I) (equal weights, shared std)."""
    var_t = alpha**2 * std**2 + sigma**2  # (B, 1)
    d2 = ((x_t[:, None, :] - alpha[:, None, :] * means[None]) ** 2).sum(-1)  # (B, K)
    r = torch.softmax(-0.5 * d2 / var_t, dim=1)  # responsibilities
    post = means[None] + (alpha * std**2 / var_t)[:, None, :] * (
        x_t[:, None, :] - alpha[:, None, :] * means[None]
    )
    return (r[..., None] * post).sum(1)


def noise(x, g):
    t = torch.randint(20, 980, (x.shape[0],), generator=g)
    alpha, sigma = alpha_sigma(ABAR, t, x.ndim)
    eps = torch.randn(x.shape, generator=g)
    return t, alpha, sigma, alpha * x + sigma * eps, eps


def test_prediction_conversions_roundtrip():
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(8, 4, 3, 3, generator=g), torch.randn(8, 4, 3, 3, generator=g)
    alpha, sigma = alpha_sigma(ABAR, torch.randint(0, T, (8,), generator=g), 4)
    x_t = alpha * x0 + sigma * eps
    v = alpha * eps - sigma * x0
    for pred, kind in ((eps, "epsilon"), (v, "v_prediction"), (x0, "sample")):
        torch.testing.assert_close(prediction_to_x0(pred, x_t, alpha, sigma, kind), x0, atol=2e-4, rtol=1e-4)
        torch.testing.assert_close(
            prediction_to_eps(pred, x_t, alpha, sigma, kind), eps, atol=2e-3, rtol=1e-3
        )
    with pytest.raises(ValueError, match="unknown prediction type"):
        prediction_to_x0(eps, x_t, alpha, sigma, "flow")


def test_reparameterised_losses_have_the_stated_gradient():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 2, generator=g, requires_grad=True)
    real, fake = torch.randn(3, 2, generator=g), torch.randn(3, 2, generator=g)
    dmd_loss(x, real, fake).backward()
    torch.testing.assert_close(x.grad, (dmd_gradient(x, real, fake) / x.numel()).float())
    x.grad = None
    w = torch.rand(3, 1, generator=g)
    vsd_loss(x, real, fake, w).backward()
    torch.testing.assert_close(x.grad, (w * (real - fake) / x.numel()).float())


@pytest.mark.parametrize("method", ["dmd", "vsd"])
def test_gaussian_student_moves_to_the_target_with_exact_scores(method):
    """Student N(m, s^2 I) with exact real (target) and fake (student) scores: m and s reach the target."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    target_mean, target_std = torch.tensor([[2.0, -1.0]]), 0.5
    m = torch.zeros(1, 2, requires_grad=True)
    log_s = torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([m, log_s], lr=0.03)
    start = (m - target_mean).norm().item() + abs(1 - target_std)
    for _ in range(600):
        z = torch.randn(256, 2, generator=g)
        x = m + log_s.exp() * z
        t, alpha, sigma, x_t, _ = noise(x.detach(), g)
        x0_real = gmm_x0(x_t, alpha, sigma, target_mean, target_std)
        x0_fake = gmm_x0(x_t, alpha, sigma, m.detach(), log_s.exp().detach())
        if method == "dmd":
            loss = dmd_loss(x, x0_real, x0_fake)
        else:
            eps_real, eps_fake = ((x_t - alpha * x0) / sigma for x0 in (x0_real, x0_fake))
            loss = vsd_loss(x, eps_real, eps_fake, sigma**2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    end = (m - target_mean).norm().item() + abs(log_s.exp().item() - target_std)
    assert end < 0.05 * start, (m, log_s.exp())


def _ring(k=8, radius=2.0):
    ang = torch.arange(k) * 2 * math.pi / k
    return torch.stack([radius * ang.cos(), radius * ang.sin()], 1)


def _mlp(i, o, h=128):
    return nn.Sequential(nn.Linear(i, h), nn.SiLU(), nn.Linear(h, h), nn.SiLU(), nn.Linear(h, o))


def sliced_wasserstein(a, b, n_proj=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    d = torch.randn(n_proj, a.shape[1], generator=g)
    d = d / d.norm(dim=1, keepdim=True)
    pa, pb = (a @ d.T).sort(0).values, (b @ d.T).sort(0).values
    return (pa - pb).abs().mean().item()


def _train_ring(use_fake_score: bool, steps=600, ratio=2):
    """MLP student on an 8-mode ring. With a fake score trained online (DMD's two time-scale rule) the
    student moves to the target and covers every mode; without one (score distillation sampling: the
    injected noise stands in for the fake score) it is only pulled to nearby modes and misses the target.
    Returns (sliced Wasserstein distance to the target before, after; modes holding > 5% of the samples;
    per-axis spread of the samples near a mode)."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    means, std = _ring(), 0.15
    target = means[torch.randint(0, len(means), (4000,), generator=g)] + std * torch.randn(
        4000, 2, generator=g
    )
    student, fake = _mlp(2, 2), _mlp(3, 2)
    opt_g = torch.optim.Adam(student.parameters(), lr=2e-3)
    opt_f = torch.optim.Adam(fake.parameters(), lr=2e-3)
    z_eval = torch.randn(4000, 2, generator=g)
    with torch.no_grad():
        before = sliced_wasserstein(student(z_eval), target)
    for _ in range(steps):
        for _ in range(ratio):  # fake score: denoising loss on detached student samples
            with torch.no_grad():
                x = student(torch.randn(256, 2, generator=g))
            t, alpha, sigma, x_t, _ = noise(x, g)
            pred = fake(torch.cat([x_t, t[:, None] / T], 1))
            opt_f.zero_grad()
            fake_score_loss(pred, x).backward()
            opt_f.step()
        x = student(torch.randn(256, 2, generator=g))
        t, alpha, sigma, x_t, eps = noise(x.detach(), g)
        x0_real = gmm_x0(x_t, alpha, sigma, means, std)
        if use_fake_score:
            with torch.no_grad():
                x0_fake = fake(torch.cat([x_t, t[:, None] / T], 1))
        else:
            x0_fake = (x_t - sigma * eps) / alpha  # = x itself: SDS's gradient
        opt_g.zero_grad()
        dmd_loss(x, x0_real, x0_fake).backward()
        opt_g.step()
    with torch.no_grad():
        x = student(z_eval)
    d = torch.cdist(x, means).min(1)
    counts = torch.bincount(torch.cdist(x, means).argmin(1), minlength=len(means)).float() / len(x)
    near = d.values < 3 * std
    spread = d.values[near].pow(2).mean().div(2).sqrt().item()
    return before, sliced_wasserstein(x, target), (counts > 0.05).sum().item(), spread


@pytest.mark.slow
def test_dmd_moves_an_mlp_student_to_a_gaussian_mixture_and_sds_collapses():
    before, after, modes, spread = _train_ring(use_fake_score=True)
    assert after < 0.25 * before and modes == 8
    assert spread < 2 * 0.15  # near the modes' own spread (0.15)
    _, after_sds, modes_sds, _ = _train_ring(use_fake_score=False)
    assert after_sds > 3 * after and modes_sds < 8  # no fake score: it does not reach the target


def test_gan_losses():
    hi, lo = torch.full((4,), 5.0), torch.full((4,), -5.0)
    assert gan_discriminator_loss(hi, lo) < 0.02 < gan_discriminator_loss(lo, hi)
    assert gan_generator_loss(hi) < 0.01 < gan_generator_loss(lo)
    torch.testing.assert_close(gan_generator_loss(torch.zeros(3)), torch.tensor(math.log(2)))
