"""The losses of one-step distillation, as plain functions of tensors.

Notation (diffusers' DDPM family): ``x_t = alpha_t x + sigma_t eps`` with ``alpha_t = sqrt(abar_t)``,
``sigma_t = sqrt(1 - abar_t)``. The teacher is the "real" score, a second network trained online on the
student's samples is the "fake" score, the student is ``x = G(z, c)``. Classifier-free guidance is the
standard form ``eps^w = eps(null) + w (eps(c) - eps(null))`` (w = 1: no guidance); threestudio's SDS
writes the same thing with ``w - 1``.

Generator losses use the detached-target reparameterisation: ``0.5 * ||x - stopgrad(x - g)||^2`` has
gradient ``g`` with respect to ``x``, so any optimiser (Adam, weight decay, clipping, mixed precision) sees
the distillation gradient as an ordinary loss. ``mean`` reduction over every element divides ``g`` by the
element count, which only rescales the learning rate.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "alpha_sigma",
    "dmd_gradient",
    "dmd_loss",
    "fake_score_loss",
    "gan_discriminator_loss",
    "gan_generator_loss",
    "prediction_to_eps",
    "prediction_to_x0",
    "regression_loss",
    "vsd_gradient",
    "vsd_loss",
]


def alpha_sigma(alphas_cumprod: torch.Tensor, timesteps: torch.Tensor, ndim: int):
    """``(alpha_t, sigma_t)`` for integer ``timesteps``, shaped to broadcast against an ``ndim`` tensor."""
    abar = alphas_cumprod.to(timesteps.device)[timesteps].float()
    shape = (-1,) + (1,) * (ndim - 1)
    return abar.sqrt().view(shape), (1 - abar).sqrt().view(shape)


def prediction_to_x0(pred, x_t, alpha, sigma, prediction_type: str) -> torch.Tensor:
    """The clean-sample estimate from a denoiser's output of type epsilon, v_prediction or sample.

    Epsilon prediction is undefined at ``alpha_t = 0`` (zero terminal SNR); alpha is floored at 1e-4
    there, as a division by zero would otherwise give infinities."""
    if prediction_type == "epsilon":
        return (x_t - sigma * pred) / alpha.clamp_min(1e-4)
    if prediction_type == "v_prediction":
        return alpha * x_t - sigma * pred
    if prediction_type == "sample":
        return pred
    raise ValueError(f"unknown prediction type {prediction_type!r} (epsilon, v_prediction or sample)")


def prediction_to_eps(pred, x_t, alpha, sigma, prediction_type: str) -> torch.Tensor:
    """The noise estimate from a denoiser's output of type epsilon, v_prediction or sample."""
    if prediction_type == "epsilon":
        return pred
    if prediction_type == "v_prediction":
        return sigma * x_t + alpha * pred
    if prediction_type == "sample":
        return (x_t - alpha * pred) / sigma.clamp_min(1e-4)
    raise ValueError(f"unknown prediction type {prediction_type!r} (epsilon, v_prediction or sample)")


def _reparameterised(x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """``0.5 * mean ||x - stopgrad(x - grad)||^2``: its gradient with respect to x is ``grad / x.numel()``."""
    target = (x.double() - grad.double()).detach()
    return 0.5 * F.mse_loss(x.double(), target).to(x.dtype)


def dmd_gradient(x: torch.Tensor, x0_real: torch.Tensor, x0_fake: torch.Tensor) -> torch.Tensor:
    """DMD's distribution-matching gradient (DMD2 eq. 2 with its normaliser): ``(x0_fake - x0_real)``
    divided per sample by the mean absolute distance between ``x`` and the real prediction, in float64;
    non-finite entries become 0."""
    x, x0_real, x0_fake = x.double(), x0_real.double(), x0_fake.double()
    dims = tuple(range(1, x.ndim))
    norm = (x - x0_real).abs().mean(dim=dims, keepdim=True)
    return torch.nan_to_num((x0_fake - x0_real) / norm)


def dmd_loss(x: torch.Tensor, x0_real: torch.Tensor, x0_fake: torch.Tensor) -> torch.Tensor:
    """The generator's distribution-matching loss; ``x`` carries the student's graph, the predictions none."""
    return _reparameterised(x, dmd_gradient(x, x0_real.detach(), x0_fake.detach()))


def vsd_gradient(eps_real: torch.Tensor, eps_fake: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """SwiftBrush's variational score distillation gradient ``w(t) (eps_real^w - eps_fake)``; SwiftBrush
    uses ``w(t) = sigma_t^2``."""
    return weight * (eps_real.double() - eps_fake.double())


def vsd_loss(
    x: torch.Tensor, eps_real: torch.Tensor, eps_fake: torch.Tensor, weight: torch.Tensor
) -> torch.Tensor:
    """The generator's VSD loss; ``x`` carries the student's graph, the noise predictions none."""
    return _reparameterised(x, vsd_gradient(eps_real.detach(), eps_fake.detach(), weight))


def fake_score_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The fake score's denoising loss on the (detached) student samples: plain MSE against the target of
    the model's prediction type (the noise, the velocity or the sample)."""
    return F.mse_loss(prediction.float(), target.float())


def gan_generator_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss ``softplus(-D(G(z)))``."""
    return F.softplus(-logits_fake.float()).mean()


def gan_discriminator_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """Discriminator loss ``softplus(D(fake)) + softplus(-D(real))``."""
    return F.softplus(logits_fake.float()).mean() + F.softplus(-logits_real.float()).mean()


def regression_loss(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Optional regression to teacher samples of the same noise (DMD's paired loss; MSE, as no LPIPS
    network can be downloaded here)."""
    return F.mse_loss(x.float(), target.detach().float())
