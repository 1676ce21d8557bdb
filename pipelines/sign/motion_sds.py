"""Score distillation of the motion prior into Bezier motion curves (AniClipart's idea, on joint rotations).

AniClipart optimises cubic Bezier trajectories of keypoints with video score distillation and a skeleton
term. Here the curves are the motion features themselves: every one of the 340 numbers per frame (55 joint
rotations in 6-D, 10 expression values) follows a piecewise cubic Bezier curve in time
(``bezier_basis``: ``segments`` segments sharing their end points), so the motion is smooth within each
segment and has a handful of parameters. The motion diffusion model (``SignMotionPipeline``) is the
prior: its clean-motion prediction ``x0`` gives ``eps = (x_t - alpha_t x0) / sigma_t``, which the generic
``genkit.distill.score_distillation.SDS`` turns into a gradient. The rigidity term keeps each joint's 6-D
rotation on the rotation manifold (orthonormal columns), so the prior sees valid skeletons (the bones
themselves are rigid: forward kinematics fixes their lengths).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from genkit.data.skeleton import NUM_JOINTS

__all__ = ["BezierMotion", "bezier_basis", "distill_motion", "motion_eps"]


def bezier_basis(frames: int, segments: int) -> torch.Tensor:
    """(frames, 3 * segments + 1) weights of the control points of a piecewise cubic Bezier curve sampled
    at ``frames`` evenly spaced times (segment k uses points 3k..3k+3; neighbours share an end point)."""
    s = torch.linspace(0, segments, frames).clamp(max=segments - 1e-6)
    k = s.floor().long()
    u = s - k
    w = torch.stack([(1 - u) ** 3, 3 * u * (1 - u) ** 2, 3 * u**2 * (1 - u), u**3], -1)
    basis = torch.zeros(frames, 3 * segments + 1)
    for i in range(4):
        basis[torch.arange(frames), 3 * k + i] += w[:, i]
    return basis


class BezierMotion(nn.Module):
    """Motion features (T, F) = ``bezier_basis`` @ control points (3 * segments + 1, F), all free."""

    def __init__(self, init: torch.Tensor, segments: int):
        super().__init__()
        frames, features = init.shape
        self.register_buffer("basis", bezier_basis(frames, segments))
        # least-squares fit of the control points to the initial motion
        control = torch.linalg.lstsq(self.basis, init).solution
        self.control = nn.Parameter(control)
        self.segments = segments

    def forward(self) -> torch.Tensor:
        return self.basis @ self.control


def rigidity(motion: torch.Tensor) -> torch.Tensor:
    """Mean squared deviation of each 6-D rotation's columns from orthonormal."""
    r = motion[..., : NUM_JOINTS * 6].unflatten(-1, (NUM_JOINTS, 2, 3))
    a, b = r[..., 0, :], r[..., 1, :]
    return ((a.norm(dim=-1) - 1) ** 2 + (b.norm(dim=-1) - 1) ** 2 + (a * b).sum(-1) ** 2).mean()


def motion_eps(pipe, guidance_scale: float, prompts: list[str]):
    """The prior's eps with CFG for ``prompts`` (fixed for the run: their text states are encoded once),
    ``fn(x_t, t) -> eps``, from its clean-motion prediction."""
    from genkit.distill.losses import alpha_sigma, prediction_to_eps

    model, abar = pipe.model, pipe.scheduler.alphas_cumprod
    states = torch.cat([pipe.encode_text([""] * len(prompts)), pipe.encode_text(prompts)])

    def fn(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x0_null, x0_text = model(torch.cat([x_t, x_t]), torch.cat([t, t]), states).chunk(2)
        x0 = x0_null + guidance_scale * (x0_text - x0_null)
        alpha, sigma = alpha_sigma(abar.to(x_t.device), t, x_t.ndim)
        return prediction_to_eps(x0, x_t, alpha, sigma, "sample")

    return fn


def distill_motion(
    pipe,
    sentence: str,
    steps: int = 400,
    segments: int = 6,
    guidance_scale: float = 7.5,
    learning_rate: float = 0.05,
    rigidity_weight: float = 10.0,
    seed: int = 0,
    progress: bool = True,
) -> torch.Tensor:
    """(T, 340) motion features of ``sentence`` by SDS from ``pipe``'s prior into a ``BezierMotion``
    (initialised at the prior's mean pose), seeded by ``seed``."""
    from tqdm.auto import tqdm

    from genkit.distill.score_distillation import SDS, TimestepRange

    model = pipe.model
    frames = model.config.frames
    curve = BezierMotion(model.feature_mean.expand(frames, -1).clone().cpu(), segments).to(pipe.device)
    optimizer = torch.optim.Adam(curve.parameters(), lr=learning_rate)
    sds = SDS(
        motion_eps(pipe, guidance_scale, [sentence]),
        pipe.scheduler.alphas_cumprod,
        TimestepRange(0.02, 0.98, 0.2, math.ceil(steps * 0.8)),
        weighting="uniform",
    )
    for step in tqdm(range(steps), desc="motion SDS", disable=not progress):
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        motion = curve()
        loss = sds.loss(model.normalize(motion)[None], step, g)  # the prior's gradient is under no_grad
        loss = loss + rigidity_weight * rigidity(motion)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return curve().detach()
