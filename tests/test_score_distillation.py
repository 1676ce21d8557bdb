"""SDS and VSD (genkit.distill.score_distillation) against the exact score of a 2-D Gaussian mixture.

With the analytic noised score, SDS particles are mode seeking (they shrink onto the four means) while
VSD particles, whose fake score is an MLP trained online on them, keep the target's spread."""

import math

import pytest
import torch
from diffusers import DDPMScheduler

from genkit.distill.score_distillation import SDS, VSD, TimestepRange, weight_of

ABAR = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012).alphas_cumprod
MEANS = torch.tensor([[2.0, 2.0], [-2.0, 2.0], [2.0, -2.0], [-2.0, -2.0]])
STD = 0.5


def gmm_eps(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Exact eps = -sigma_t * grad log p_t(x_t) of the mixture noised to timestep t."""
    a, s = ABAR[t].sqrt()[:, None], (1 - ABAR[t]).sqrt()[:, None]
    var = (a**2 * STD**2 + s**2)[:, None]
    d = x_t[:, None, :] - a[:, None, :] * MEANS[None]
    r = torch.softmax(-(d**2).sum(-1, keepdim=True) / (2 * var), dim=1)
    return s * (r * d / var).sum(1)


class FakeScore(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(18, 128),
            torch.nn.SiLU(),
            torch.nn.Linear(128, 128),
            torch.nn.SiLU(),
            torch.nn.Linear(128, 2),
        )

    def forward(self, x, t):
        ang = t[:, None].float() / 1000 * (2 ** torch.arange(8))[None] * math.pi
        return self.net(torch.cat([x, ang.sin(), ang.cos()], 1))


def spread_and_counts(x: torch.Tensor):
    k = ((x[:, None] - MEANS[None]) ** 2).sum(-1).argmin(1)
    spread = torch.stack([(x[k == i] - MEANS[i]).std(0).mean() for i in range(4)]).mean()
    return float(spread), torch.bincount(k, minlength=4)


def run_particles(method: str, seed: int, steps: int = 600):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.nn.Parameter(1.5 * torch.randn(128, 2, generator=g))
    opt = torch.optim.Adam([x], lr=0.03)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1 - 0.9 * i / steps)
    if method == "sds":
        guide = SDS(gmm_eps, ABAR)
    else:
        fake = FakeScore()
        guide = VSD(gmm_eps, fake, torch.optim.Adam(fake.parameters(), lr=2e-3), ABAR)
    for step in range(steps):
        if method == "vsd":
            for _ in range(2):
                guide.fake_step(x, g)
        loss = guide.loss(x, step, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return spread_and_counts(x.detach())


def test_gmm_eps_is_exact_for_one_gaussian_limit():
    # at t = 0 the noised score of a particle on a mean is ~0; far away it points back (eps ~ +distance)
    t = torch.tensor([0, 0])
    eps = gmm_eps(torch.tensor([[2.0, 2.0], [3.0, 2.0]]), t)
    s0 = float((1 - ABAR[0]).sqrt())
    assert eps[0].abs().max() < 1e-3
    assert eps[1, 0] == pytest.approx(s0 * 1.0 / (float(ABAR[0]) * STD**2 + s0**2), rel=1e-2)


def test_sds_collapses_vsd_keeps_spread():
    sds_spread, sds_counts = run_particles("sds", 0)
    vsd_spread, vsd_counts = run_particles("vsd", 0)
    # both find all four modes, in about equal shares
    assert sds_counts.min() >= 20 and vsd_counts.min() >= 20
    # SDS is mode seeking: the particles shrink well below the target's std (0.5); VSD keeps it
    assert sds_spread < 0.3
    assert 0.35 < vsd_spread < 0.65
    assert vsd_spread > 1.5 * sds_spread


def test_sds_gradient_and_loss_agree():
    """The reparameterised loss's gradient is the SDS gradient divided by the batch, for the same draw."""
    x = torch.nn.Parameter(torch.randn(8, 2))
    guide = SDS(gmm_eps, ABAR, TimestepRange(0.2, 0.5), weighting="uniform")
    g, t = guide.gradient(x, 0, torch.Generator().manual_seed(3))
    assert ((t >= 200) & (t <= 500)).all()
    guide.loss(x, 0, torch.Generator().manual_seed(3)).backward()
    torch.testing.assert_close(x.grad, g / 8)


def test_timestep_annealing_and_weights():
    r = TimestepRange(0.02, 0.98, t_max_end=0.5, anneal_steps=100)
    assert r.bounds(0) == (0.02, 0.98) and r.bounds(50)[1] == pytest.approx(0.74) and r.bounds(500)[1] == 0.5
    t = r.sample(1000, 4000, 1000, torch.Generator().manual_seed(0))
    assert int(t.min()) >= 20 and int(t.max()) <= 500
    with pytest.raises(ValueError):
        TimestepRange(0.5, 0.4)
    a, s = torch.tensor([0.6]), torch.tensor([0.8])
    assert float(weight_of("sigma2", a, s)) == pytest.approx(0.64)
    assert float(weight_of("snr", a, s)) == pytest.approx(0.8 / 0.6)
    with pytest.raises(ValueError):
        SDS(gmm_eps, ABAR, weighting="nope")


# --- any diffusers SD-structured pipeline folder ---------------------------------------------------------
def test_pipeline_prior_sds_and_lora_vsd_on_a_saved_pipeline(tmp_path):
    from dummies import dummy_pipeline

    from genkit.distill.score_distillation import PipelinePrior

    dummy_pipeline().save_pretrained(tmp_path, safe_serialization=True)
    prior = PipelinePrior(str(tmp_path))
    prompts = ["a small red circle at the top left", "a large blue square in the center"]
    real = prior.eps(7.5)
    x = torch.nn.Parameter(torch.randn(2, *prior.latent_shape))
    t = torch.tensor([500, 500])
    before = real(x.detach(), t, prompts)

    fake, params = prior.lora_fake(rank=2)
    guide = VSD(real, prior.eps(1.0, model=fake), torch.optim.AdamW(params, lr=1e-2), ABAR)
    assert params and all("lora" in n for n, p in fake.named_parameters() if p.requires_grad)
    for _ in range(3):
        guide.fake_step(x, torch.Generator().manual_seed(0), prompts=prompts)
    # training the LoRA changed the fake score, not the real one (adapters are off for eps_real)
    torch.testing.assert_close(real(x.detach(), t, prompts), before)
    fake_eps = prior.eps(1.0, model=fake)(x.detach(), t, prompts)
    with prior.real_score():
        plain = prior.eps(1.0, model=fake)(x.detach(), t, prompts)
    assert (fake_eps - plain).abs().max() > 1e-4

    loss = guide.loss(x, 0, torch.Generator().manual_seed(1), prompts=prompts)
    loss.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    # SDS on the same prior: a finite gradient of the right shape
    sds = SDS(real, prior.alphas_cumprod)
    g, _ = sds.gradient(x, 0, torch.Generator().manual_seed(1), prompts=prompts)
    assert g.shape == x.shape and torch.isfinite(g).all()
    # encode keeps a graph back to the pixels (a rendered image's gradient reaches the renderer)
    img = torch.rand(1, 3, 32, 32, requires_grad=True)
    prior.encode(img).sum().backward()
    assert img.grad is not None and img.grad.abs().sum() > 0


@pytest.mark.slow
def test_sds_on_the_bundled_prior_draws_the_prompt():
    """SDS from text2img-shapes on a free latent image: the oracle reads every attribute of the prompt."""
    from genkit.distill.score_distillation import PipelinePrior
    from genkit.metrics.evaluate import load_oracle, prompt_labels

    torch.manual_seed(0)
    prior = PipelinePrior("text2img-shapes")
    prompts = ["a large red circle in the center", "a small yellow triangle at the bottom right"]
    x = torch.nn.Parameter(torch.zeros(2, *prior.latent_shape))
    opt = torch.optim.Adam([x], lr=0.05)
    guide = SDS(prior.eps(7.5), prior.alphas_cumprod, TimestepRange(0.02, 0.98, 0.5, 200))
    g = torch.Generator().manual_seed(0)
    for step in range(300):
        loss = guide.loss(x, step, g, prompts=prompts)
        opt.zero_grad()
        loss.backward()
        opt.step()
    pred, labels = load_oracle().predict(prior.decode(x.detach())), prompt_labels(prompts)
    for k in labels:
        assert (pred[k] == labels[k]).all(), k
