"""Score distillation into a differentiable parameterisation: SDS (DreamFusion) and VSD (ProlificDreamer).

A *parameterisation* is anything that renders a sample ``x`` with a graph back to its parameters: a 3-D
field rendered from a camera, a motion curve, or plain particles. The guidance only sees ``x``:

    x_t = alpha_t x + sigma_t eps,      t ~ U[t_min, t_max] (annealed, ``TimestepRange``)
    SDS:  g = w(t) (eps_real^s(x_t, t) - eps)
    VSD:  g = w(t) (eps_real^s(x_t, t) - eps_fake(x_t, t)),   eps_fake trained on detached renders

and the loss is the detached-target reparameterisation ``0.5 ||x - stopgrad(x - g)||^2`` (gradient ``g``),
so any optimiser applies it. ``eps_real`` and ``eps_fake`` are plain callables ``(x_t, t, **cond) -> eps`` built
by the caller (``PipelinePrior`` wraps any diffusers SD-structured pipeline folder; a test passes the exact
score of a Gaussian mixture); the conditioning of a step (prompts, camera) is passed through as keyword
arguments of ``loss``/``gradient``/``fake_step``, so nothing about a step is held in the guidance.

Conventions:
- Classifier-free guidance is ``eps(null) + s (eps(c) - eps(null))``: ``s = 1`` is no guidance.
  threestudio writes ``eps(c) + s' (eps(c) - eps(null))``, so its ``guidance_scale=100`` is ``s = 101``.
- ``w(t)``: ``"sigma2"`` (DreamFusion's ``1 - abar_t``), ``"uniform"`` (1) or ``"snr"`` (``sigma_t /
  alpha_t``, as in some threestudio configs); t is an integer DDPM timestep.
- The SDS gradient's expectation over eps is ``-w sigma_t grad log p_t(x_t)`` (times alpha_t through the
  chain rule): mode seeking. VSD subtracts the noised score of the *rendered* distribution, so a set of
  particles keeps the target's spread instead of collapsing to its modes (``tests/test_score_distillation``
  checks both with the exact score of a 2-D Gaussian mixture).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from genkit.distill.losses import alpha_sigma

__all__ = ["EpsFn", "PipelinePrior", "TimestepRange", "SDS", "VSD", "weight_of", "WEIGHTINGS"]

EpsFn = Callable[..., torch.Tensor]  # (x_t, t, **cond) -> eps
WEIGHTINGS = ("sigma2", "uniform", "snr")


def weight_of(kind: str, alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    if kind == "sigma2":
        return sigma**2
    if kind == "uniform":
        return torch.ones_like(sigma)
    if kind == "snr":
        return sigma / alpha.clamp_min(1e-4)
    raise ValueError(f"unknown weighting {kind!r}; expected one of {WEIGHTINGS}")


@dataclass
class TimestepRange:
    """t ~ U[t_min, t_max] as fractions of ``num_train_timesteps``; ``t_max`` moves linearly to
    ``t_max_end`` over ``anneal_steps`` optimisation steps (ProlificDreamer: 0.98 -> 0.5)."""

    t_min: float = 0.02
    t_max: float = 0.98
    t_max_end: float | None = None
    anneal_steps: int = 0

    def __post_init__(self):
        end = self.t_max if self.t_max_end is None else self.t_max_end
        if not (0.0 <= self.t_min < min(self.t_max, end) and max(self.t_max, end) <= 1.0):
            raise ValueError(
                f"need 0 <= t_min < t_max <= 1, got {self.t_min}, {self.t_max} (end {self.t_max_end})"
            )

    def bounds(self, step: int) -> tuple[float, float]:
        if self.t_max_end is None or self.anneal_steps <= 0:
            return self.t_min, self.t_max
        f = min(step / self.anneal_steps, 1.0)
        return self.t_min, self.t_max + f * (self.t_max_end - self.t_max)

    def sample(
        self,
        step: int,
        n: int,
        num_train_timesteps: int,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
    ) -> torch.Tensor:
        lo, hi = self.bounds(step)
        lo_i = int(lo * num_train_timesteps)
        hi_i = min(max(int(hi * num_train_timesteps), lo_i + 1), num_train_timesteps - 1)
        return torch.randint(lo_i, hi_i + 1, (n,), generator=generator).to(device)


class SDS:
    """Score Distillation Sampling against ``eps_real`` (a callable ``(x_t, t, **cond) -> eps`` that applies
    its own guidance). ``alphas_cumprod``: the prior's noise schedule."""

    def __init__(
        self,
        eps_real: EpsFn,
        alphas_cumprod: torch.Tensor,
        timesteps: TimestepRange | None = None,
        weighting: str = "sigma2",
    ):
        weight_of(weighting, torch.ones(1), torch.ones(1))  # validates the name
        self.eps_real, self.alphas_cumprod = eps_real, alphas_cumprod.float()
        self.timesteps, self.weighting = timesteps or TimestepRange(), weighting
        self.num_train_timesteps = len(alphas_cumprod)

    def noise(self, x: torch.Tensor, step: int, generator: torch.Generator | None = None):
        """(x_t, t, eps, alpha, sigma) for a detached ``x``."""
        t = self.timesteps.sample(step, x.shape[0], self.num_train_timesteps, generator, x.device)
        eps = torch.randn(x.shape, generator=generator).to(x)
        alpha, sigma = alpha_sigma(self.alphas_cumprod, t, x.ndim)
        return alpha * x + sigma * eps, t, eps, alpha, sigma

    def baseline(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, **cond) -> torch.Tensor:
        """What SDS subtracts from the real score: the injected noise."""
        return eps

    @torch.no_grad()
    def gradient(self, x: torch.Tensor, step: int, generator: torch.Generator | None = None, **cond):
        """(g, t) at the detached ``x``; ``cond`` (e.g. ``prompts``, ``camera``) goes to the score callables."""
        x = x.detach()
        x_t, t, eps, alpha, sigma = self.noise(x, step, generator)
        real = self.eps_real(x_t, t, **cond)
        g = weight_of(self.weighting, alpha, sigma) * (real - self.baseline(x_t, t, eps, **cond))
        return torch.nan_to_num(g), t

    def loss(
        self, x: torch.Tensor, step: int, generator: torch.Generator | None = None, **cond
    ) -> torch.Tensor:
        """``0.5 * sum ||x - stopgrad(x - g)||^2 / batch``: its gradient with respect to x is ``g / batch``."""
        g, _ = self.gradient(x, step, generator, **cond)
        target = (x - g).detach()
        return 0.5 * F.mse_loss(x, target, reduction="sum") / x.shape[0]


class VSD(SDS):
    """Variational Score Distillation: SDS with the injected noise replaced by ``eps_fake``, a trainable
    score of the rendered distribution (ProlificDreamer: a camera-conditioned LoRA of the prior).

    ``eps_fake``: a callable ``(x_t, t, **cond) -> eps`` whose parameters ``fake_optimizer`` updates;
    ``fake_step(x)`` does one denoising update on detached renders (t ~ U[0, T), MSE on eps). The fake
    score is used under ``no_grad`` for the guidance, so only ``fake_step`` trains it."""

    def __init__(
        self,
        eps_real: EpsFn,
        eps_fake: EpsFn,
        fake_optimizer: torch.optim.Optimizer,
        alphas_cumprod: torch.Tensor,
        timesteps: TimestepRange | None = None,
        weighting: str = "sigma2",
        fake_timesteps: TimestepRange | None = None,
    ):
        super().__init__(eps_real, alphas_cumprod, timesteps, weighting)
        self.eps_fake, self.fake_optimizer = eps_fake, fake_optimizer
        self.fake_timesteps = fake_timesteps or TimestepRange(0.0, 1.0)

    def baseline(self, x_t, t, eps, **cond):
        return self.eps_fake(x_t, t, **cond)

    def fake_step(self, x: torch.Tensor, generator: torch.Generator | None = None, **cond) -> float:
        """One update of the fake score on the detached renders ``x``; returns its loss."""
        x = x.detach()
        t = self.fake_timesteps.sample(0, x.shape[0], self.num_train_timesteps, generator, x.device)
        eps = torch.randn(x.shape, generator=generator).to(x)
        alpha, sigma = alpha_sigma(self.alphas_cumprod, t, x.ndim)
        with torch.enable_grad():
            loss = F.mse_loss(self.eps_fake(alpha * x + sigma * eps, t, **cond).float(), eps.float())
            self.fake_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.fake_optimizer.step()
        return loss.item()


class PipelinePrior:
    """Guidance callables from any diffusers SD-structured pipeline folder (a denoiser called as
    ``denoiser(x_t, t, encoder_hidden_states)``, CLIP-style text encoder and tokenizer, VAE, DDPM-family
    scheduler of any prediction type; ``genkit.distill.Teacher`` loads it). Samples ``x`` are the prior's
    latents; ``decode``/``encode`` map to images in [0, 1].

    ``eps(guidance_scale)``: the real score with CFG, called as ``fn(x_t, t, prompts, camera=None)`` (a
    view prior's camera tokens; DreamFusion's view words go in the prompts). ``lora_fake(rank)``: ProlificDreamer's fake
    score, a LoRA on the prior's own denoiser (``disable_adapters()`` gives the prior back), with its
    parameters and the context under which the denoiser is the real score again."""

    def __init__(self, name_or_path: str, device: torch.device | str = "cpu"):
        from genkit.distill.teacher import Teacher

        self.teacher = Teacher(name_or_path, device)
        self.alphas_cumprod = self.teacher.alphas_cumprod
        self.latent_shape = self.teacher.latent_shape
        self._real_score = None
        self._text = {("",): self.teacher.encode([""])}

    def states(self, prompts: str | list[str], batch: int, camera=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(conditional, empty-prompt) states for ``batch`` samples: one prompt or one per sample, with
        camera tokens appended when the folder has a ``camera_encoder`` and ``camera`` (B or 1, 2) is given
        (both branches carry the camera: guidance acts on the text)."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        key = tuple(prompts)
        if key not in self._text:
            self._text[key] = self.teacher.encode(prompts)
        cond, null = self._text[key], self._text[("",)]
        cond, null = cond.expand(batch, -1, -1), null.expand(batch, -1, -1)
        if camera is not None:
            encoder = getattr(self.teacher.pipe, "camera_encoder", None)
            if encoder is None:
                raise ValueError(f"{self.teacher.name!r} has no camera encoder; call without camera")
            cams = torch.as_tensor(camera, dtype=torch.float32).reshape(-1, 2).expand(batch, 2)
            with torch.no_grad():
                tokens = encoder(cams.to(encoder.device)).to(cond.dtype)
            cond, null = torch.cat([cond, tokens], 1), torch.cat([null, tokens], 1)
        return cond, null

    def eps(self, guidance_scale: float = 7.5, model=None) -> EpsFn:
        """``fn(x_t, t, prompts, camera=None)``: the prior's guided eps (``model=None``; any LoRA disabled),
        or that of ``model`` (a fake score on the same denoiser)."""
        teacher = self.teacher

        def fn(x_t: torch.Tensor, t: torch.Tensor, prompts, camera=None) -> torch.Tensor:
            cond, null = self.states(prompts, x_t.shape[0], camera)
            den = teacher.denoiser if model is None else model
            with self.real_score() if model is None else nullcontext():
                return teacher.guided(teacher.eps, den, x_t, t, cond, null, guidance_scale)

        return fn

    def lora_fake(self, rank: int = 4) -> tuple[torch.nn.Module, list[torch.nn.Parameter]]:
        """A LoRA fake score on the prior's denoiser; ``eps(..., model=fake)`` evaluates it."""
        from genkit.distill.teacher import build_fake_score

        fake, self._real_score = build_fake_score(self.teacher, "lora", rank)
        return fake, [p for p in fake.parameters() if p.requires_grad]

    def real_score(self):
        """A context under which the denoiser is the prior (its LoRA, if any, disabled)."""
        return nullcontext() if self._real_score is None else self._real_score()

    @torch.no_grad()
    def decode(self, x: torch.Tensor) -> torch.Tensor:
        vae = self.teacher.pipe.vae
        return (vae.decode(x / vae.config.scaling_factor).sample / 2 + 0.5).clamp(0, 1)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Latents of images in [0, 1], with a graph back to the images (a rendered field's pixels)."""
        vae = self.teacher.pipe.vae
        return vae.encode(images * 2 - 1).latent_dist.mean * vae.config.scaling_factor
