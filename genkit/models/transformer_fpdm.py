"""FPDMTransformer2DModel: a diffusion transformer whose middle is one implicit layer.

Fixed Point Diffusion Models (Bai & Melas-Kyriazi, CVPR 2024): patchify -> ``pre_depth`` DiT blocks ->
an implicit layer z* = f(z*, x) solved by fixed-point iteration -> ``post_depth`` DiT blocks -> final
layer. The implicit layer is one adaLN-Zero DiT block fed through an input-injection MLP:

    inj = W_pre h,   h = pre(x)
    f(z) = Block_c( fc2( GELU( fc1([z ; inj]) ) ) ),     z_0 = h  (or a warm start)

``fc1`` on the concatenation is split as ``fc1_z(z) + fc1_inj(inj)``; the injection half is computed once
per call (exact algebra, saves 2 D^2 per token per iteration).

Everything about the fixed point is an explicit argument or output: ``num_iterations``,
``initial_solution`` (warm start from the previous timestep), ``num_grad_iterations`` (stochastic
Jacobian-free backprop: the first iterations run under real ``torch.no_grad()``), the solver and its
tolerance; ``solution`` and the residual history come back in the output. The module holds no state
between calls, so it batches with classifier-free guidance and works with any diffusers scheduler.

Conditioning: timestep embedding plus the mean-pooled text states drive adaLN; every block also
cross-attends to the text tokens (PixArt-style).

The DiT baseline (``genkit/models/transformer_dit.py``) stacks the same blocks explicitly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from diffusers.models.attention_processor import Attention
from diffusers.models.embeddings import PatchEmbed, TimestepEmbedding, Timesteps
from diffusers.utils import BaseOutput

__all__ = [
    "FPDMTransformer2DModel",
    "FPDMTransformerOutput",
    "FPDMBlock",
    "TextConditionedEmbed",
    "FinalLayer",
    "picard",
    "anderson",
    "SOLVERS",
]


# --- solvers ------------------------------------------------------------------------------------------
def _residual(fz: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Relative residual ||f(z) - z|| / ||f(z)|| over the whole batch (a 0-d tensor: no device sync)."""
    return (fz - z).norm() / (fz.norm() + 1e-8)


def _converged(residual: torch.Tensor, tol: float | None) -> bool:
    return tol is not None and residual.item() < tol  # syncs only when a tolerance asks for it


def picard(
    f: Callable[[torch.Tensor], torch.Tensor],
    z0: torch.Tensor,
    num_iterations: int,
    tol: float | None = None,
    damping: float = 1.0,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """z <- (1 - damping) z + damping f(z); stops early once the residual is below ``tol``.

    ``damping=1`` is plain Picard iteration. Returns the last iterate and the residual of every iteration.
    """
    z, residuals = z0, []
    for _ in range(num_iterations):
        fz = f(z)
        residuals.append(_residual(fz, z))
        z = fz if damping == 1.0 else (1 - damping) * z + damping * fz
        if _converged(residuals[-1], tol):
            break
    return z, residuals


def anderson(
    f: Callable[[torch.Tensor], torch.Tensor],
    z0: torch.Tensor,
    num_iterations: int,
    tol: float | None = None,
    memory: int = 5,
    lam: float = 1e-4,
    beta: float = 1.0,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Anderson acceleration (type II) over the last ``memory`` iterates, per batch element.

    Solves min_alpha ||sum_i alpha_i g_i|| with sum alpha = 1 (g = f(z) - z) through the regularised
    normal equations (Walker & Ni 2011), with the regulariser scaled by mean(diag(GG^T)).
    """
    b = z0.shape[0]
    shape = z0.shape
    zs, fs, residuals = [], [], []
    z = z0
    for _ in range(num_iterations):
        fz = f(z)
        residuals.append(_residual(fz, z))
        if _converged(residuals[-1], tol):
            z = fz
            break
        zs.append(z.reshape(b, -1))
        fs.append(fz.reshape(b, -1))
        zs, fs = zs[-memory:], fs[-memory:]
        n = len(zs)
        if n == 1:
            z = fz
            continue
        X, Fm = torch.stack(zs, 1), torch.stack(fs, 1)  # (b, n, d)
        G = Fm - X
        H = torch.zeros(b, n + 1, n + 1, dtype=z0.dtype, device=z0.device)
        H[:, 0, 1:] = H[:, 1:, 0] = 1
        GG = G @ G.transpose(1, 2)
        # Tikhonov term relative to the scale of GG^T, so it neither vanishes nor dominates as residuals shrink.
        reg = lam * GG.diagonal(dim1=1, dim2=2).mean(-1)[:, None, None] + 1e-12
        H[:, 1:, 1:] = GG + reg * torch.eye(n, dtype=z0.dtype, device=z0.device)
        y = torch.zeros(b, n + 1, 1, dtype=z0.dtype, device=z0.device)
        y[:, 0] = 1
        alpha = torch.linalg.solve(H, y)[:, 1:, 0]  # (b, n)
        z = (beta * (alpha[:, None] @ Fm)[:, 0] + (1 - beta) * (alpha[:, None] @ X)[:, 0]).reshape(shape)
    return z, residuals


SOLVERS = ("picard", "damped", "anderson")


# --- blocks -------------------------------------------------------------------------------------------
def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


class FPDMBlock(nn.Module):
    """adaLN-Zero DiT block with cross-attention to text tokens between self-attention and the MLP."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, cross_attention_dim: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, heads=heads, dim_head=dim // heads, bias=True)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.cross = Attention(
            dim, cross_attention_dim=cross_attention_dim, heads=heads, dim_head=dim // heads, bias=True
        )
        self.norm3 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        nn.init.zeros_(
            self.ada[1].weight
        )  # adaLN-Zero: the block starts as the identity on its residual path
        nn.init.zeros_(self.ada[1].bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        sh1, sc1, g1, sh2, sc2, g2 = self.ada(c).chunk(6, dim=-1)
        x = x + g1[:, None] * self.attn(modulate(self.norm1(x), sh1, sc1))
        x = x + self.cross(self.norm2(x), encoder_hidden_states=context)
        return x + g2[:, None] * self.mlp(modulate(self.norm3(x), sh2, sc2))


class TextConditionedEmbed(nn.Module):
    """Patchify latents (sin-cos positions) and build the adaLN conditioning c = t_emb + W mean(text)."""

    def __init__(
        self, sample_size: int, patch_size: int, in_channels: int, hidden_size: int, cross_attention_dim: int
    ):
        super().__init__()
        self.patch_embed = PatchEmbed(sample_size, sample_size, patch_size, in_channels, hidden_size)
        self.time_proj = Timesteps(256, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embed = TimestepEmbedding(256, hidden_size)
        self.text_pool = nn.Linear(cross_attention_dim, hidden_size)

    def forward(self, x: torch.Tensor, timestep, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = x.shape[0]
        if not torch.is_tensor(timestep):
            timestep = torch.tensor([timestep], device=x.device)
        timestep = timestep.reshape(-1).expand(b)
        c = self.time_embed(self.time_proj(timestep).to(x.dtype)) + self.text_pool(text.mean(dim=1))
        return self.patch_embed(x), c


class FinalLayer(nn.Module):
    """adaLN-modulated LayerNorm and a linear map back to patches, then unpatchify. With ``head_channels``
    the patches carry that many channels, refined at the latent's full resolution by two 3x3 convolutions
    (the detail inside a patch, which one linear map per token renders poorly); the last map is
    zero-initialised, so the model starts by predicting zero."""

    def __init__(
        self, hidden_size: int, patch_size: int, out_channels: int, sample_size: int, head_channels: int = 0
    ):
        super().__init__()
        self.patch_size, self.out_channels, self.sample_size = patch_size, out_channels, sample_size
        self.norm = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 2 * hidden_size))
        self.channels = head_channels or out_channels
        self.linear = nn.Linear(hidden_size, patch_size * patch_size * self.channels)
        self.head = None
        if head_channels:
            self.head = nn.Sequential(
                nn.Conv2d(head_channels, head_channels, 3, padding=1),
                nn.SiLU(),
                nn.Conv2d(head_channels, out_channels, 3, padding=1),
            )
        for m in (self.ada[1], self.head[-1] if self.head is not None else self.linear):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.ada(c).chunk(2, dim=-1)
        x = self.linear(modulate(self.norm(x), shift, scale))
        p, ch, h = self.patch_size, self.channels, self.sample_size // self.patch_size
        x = x.reshape(x.shape[0], h, h, p, p, ch)
        x = torch.einsum("nhwpqc->nchpwq", x).reshape(x.shape[0], ch, h * p, h * p)
        return x if self.head is None else self.head(x)


@dataclass
class FPDMTransformerOutput(BaseOutput):
    """``sample``: the prediction; ``solution``: the fixed point (tokens), to warm-start the next call;
    ``residuals``: relative residual per iteration; ``block_evaluations``: pre + iterations + post."""

    sample: torch.Tensor
    solution: torch.Tensor | None = None
    residuals: list[float] | None = None
    block_evaluations: int = 0


# --- model --------------------------------------------------------------------------------------------
class FPDMTransformer2DModel(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(
        self,
        sample_size: int = 16,
        patch_size: int = 2,
        in_channels: int = 4,
        out_channels: int | None = None,
        hidden_size: int = 128,
        num_attention_heads: int = 4,
        pre_depth: int = 1,
        post_depth: int = 1,
        mlp_ratio: float = 4.0,
        cross_attention_dim: int = 64,
        num_iterations: int = 8,
        head_channels: int = 0,
    ):
        super().__init__()
        out_channels = out_channels or in_channels
        d = hidden_size
        self.embed = TextConditionedEmbed(sample_size, patch_size, in_channels, d, cross_attention_dim)

        block = lambda: FPDMBlock(d, num_attention_heads, mlp_ratio, cross_attention_dim)  # noqa: E731
        self.pre_blocks = nn.ModuleList(block() for _ in range(pre_depth))
        self.pre_projection = nn.Linear(d, d)
        self.inject_fc1_z = nn.Linear(d, 2 * d)
        self.inject_fc1_inj = nn.Linear(d, 2 * d, bias=False)
        self.inject_fc2 = nn.Linear(2 * d, d)
        self.fixed_point_block = block()
        self.post_blocks = nn.ModuleList(block() for _ in range(post_depth))

        self.final = FinalLayer(d, patch_size, out_channels, sample_size, head_channels)

    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor | float | int,
        encoder_hidden_states: torch.Tensor,
        num_iterations: int | None = None,
        initial_solution: torch.Tensor | None = None,
        initial_solution_weight: float = 1.0,
        num_grad_iterations: int | None = None,
        solver: str = "picard",
        tol: float | None = None,
        damping: float = 0.5,
        anderson_memory: int = 5,
        return_solution: bool = True,
        return_dict: bool = True,
    ) -> FPDMTransformerOutput | tuple:
        """Predict noise for latents ``hidden_states`` (B, C, S, S) at ``timestep`` given text states.

        Args:
            num_iterations: fixed-point iterations (default: the config's ``num_iterations``); 0 is allowed
                and skips the implicit layer's block.
            initial_solution: warm start (B, tokens, hidden) for z_0, e.g. the previous timestep's
                ``solution``; default z_0 = h, the output of the pre blocks.
            initial_solution_weight: z_0 = w * initial_solution + (1 - w) * h (mixing; 1 = plain reuse).
            num_grad_iterations: when gradients are enabled, only the last ``num_grad_iterations``
                iterations record a graph (stochastic Jacobian-free backprop); ``None`` backpropagates
                through all of them. Ignored under ``torch.no_grad()``.
            solver: ``"picard"``, ``"damped"`` (with ``damping``) or ``"anderson"`` (memory
                ``anderson_memory``) for the no-grad iterations; graph-recording iterations are Picard.
            tol: stop the no-grad iterations early once the relative residual is below ``tol``.
            return_solution: return the fixed point (to warm-start the next call); False returns None.
        """
        n = self.config.num_iterations if num_iterations is None else num_iterations
        if n < 0:
            raise ValueError(f"num_iterations must be >= 0, got {n}")
        if solver not in SOLVERS:
            raise ValueError(f"unknown solver {solver!r}; expected one of {SOLVERS}")
        if num_grad_iterations is not None and not 0 <= num_grad_iterations <= n:
            raise ValueError(
                f"num_grad_iterations must be in [0, num_iterations={n}], got {num_grad_iterations}"
            )

        ctx = encoder_hidden_states
        h, c = self.embed(hidden_states, timestep, ctx)
        for blk in self.pre_blocks:
            h = blk(h, c, ctx)
        inj = self.inject_fc1_inj(self.pre_projection(h))  # once per call

        def f(z: torch.Tensor) -> torch.Tensor:
            return self.fixed_point_block(
                self.inject_fc2(F.gelu(self.inject_fc1_z(z) + inj, approximate="tanh")), c, ctx
            )

        if initial_solution is None:
            z = h
        elif initial_solution.shape != h.shape:
            raise ValueError(
                f"initial_solution has shape {tuple(initial_solution.shape)}, expected {tuple(h.shape)}"
            )
        else:
            w = initial_solution_weight
            z = initial_solution.to(h.dtype) if w == 1.0 else w * initial_solution.to(h.dtype) + (1 - w) * h
        n_grad = n if (num_grad_iterations is None or not torch.is_grad_enabled()) else num_grad_iterations
        n_free = n - n_grad if torch.is_grad_enabled() else n
        residuals: list[torch.Tensor] = []
        if n_free > 0:
            with torch.no_grad():
                z0 = z.detach()
                if solver == "anderson":
                    z, residuals = anderson(f, z0, n_free, tol=tol, memory=anderson_memory)
                else:
                    z, residuals = picard(
                        f, z0, n_free, tol=tol, damping=damping if solver == "damped" else 1.0
                    )
        if torch.is_grad_enabled():
            for _ in range(n_grad):
                fz = f(z)
                residuals.append(_residual(fz.detach(), z.detach()))
                z = fz
        solution = z if return_solution else None

        x = z
        for blk in self.post_blocks:
            x = blk(x, c, ctx)
        out = self.final(x, c)
        evals = len(self.pre_blocks) + len(residuals) + len(self.post_blocks)
        history = torch.stack(residuals).tolist() if residuals else []
        if not return_dict:
            return (out, solution, history, evals)
        return FPDMTransformerOutput(
            sample=out, solution=solution, residuals=history, block_evaluations=evals
        )
