"""Multi-resolution hash grid encoding (Instant-NGP, Mueller et al. 2022): the torch reference.

Level ``l`` has resolution ``N_l = floor(base_resolution * growth^l)`` with
``growth = (max_resolution / base_resolution)^(1 / (levels - 1))``. A point in [0, 1]^3 is looked up at the
8 corners of its cell on every level and trilinearly interpolated. Levels whose ``(N_l + 1)^3`` vertices fit
in the table are indexed densely (no collisions, a cheap win pure-torch ports skip); finer levels use
Instant-NGP's spatial hash ``(x * 1) ^ (y * 2654435761) ^ (z * 805459861) mod T``. The output concatenates
the levels' features: (N, levels * features_per_level).

Also here, as the fields built on the grid use them: ``spherical_harmonics`` (the view-direction encoding)
and ``trunc_exp`` (the density activation).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from genkit.render.backends import check_backend, use_triton

__all__ = ["HashGridEncoding", "PRIMES", "spherical_harmonics", "trunc_exp"]

PRIMES = (1, 2654435761, 805459861)
_CORNERS = torch.tensor([[i >> 2 & 1, i >> 1 & 1, i & 1] for i in range(8)])  # (8, 3) offsets


class HashGridEncoding(nn.Module):
    def __init__(
        self,
        levels: int = 16,
        features_per_level: int = 2,
        log2_table_size: int = 19,
        base_resolution: int = 16,
        max_resolution: int = 2048,
        init_scale: float = 1e-4,
        backend: str = "auto",
    ):
        super().__init__()
        check_backend(backend, ("auto", "torch", "triton"))
        self.backend = backend
        if levels < 1 or features_per_level < 1 or log2_table_size < 1:
            raise ValueError("levels, features_per_level and log2_table_size must be positive")
        self.levels, self.features_per_level = levels, features_per_level
        self.table_size = 2**log2_table_size
        growth = math.exp((math.log(max_resolution) - math.log(base_resolution)) / max(levels - 1, 1))
        self.resolutions = [int(math.floor(base_resolution * growth**lvl + 1e-6)) for lvl in range(levels)]
        self.dense = [(r + 1) ** 3 <= self.table_size for r in self.resolutions]
        self.register_buffer("_res", torch.tensor(self.resolutions, dtype=torch.int32), persistent=False)
        self.register_buffer("_dense", torch.tensor(self.dense, dtype=torch.int32), persistent=False)
        self.tables = nn.Parameter(
            torch.empty(levels, self.table_size, features_per_level).uniform_(-init_scale, init_scale)
        )

    @property
    def out_dim(self) -> int:
        return self.levels * self.features_per_level

    def corner_indices(self, level: int, corners: torch.Tensor) -> torch.Tensor:
        """Table rows of integer grid ``corners`` (..., 3) on ``level``."""
        r = self.resolutions[level]
        if self.dense[level]:
            return corners[..., 0] + (r + 1) * (corners[..., 1] + (r + 1) * corners[..., 2])
        h = corners[..., 0] * PRIMES[0] ^ corners[..., 1] * PRIMES[1] ^ corners[..., 2] * PRIMES[2]
        return h & (self.table_size - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (N, 3) in [0, 1] -> features (N, levels * features_per_level). With the Triton backend,
        gradients reach the tables only."""
        if use_triton(x.device, self.backend):
            from genkit.render.kernels.triton_hashgrid import hashgrid_triton

            return hashgrid_triton(x, self.tables, self._res, self._dense).to(self.tables.dtype)
        return self._forward_torch(x)

    def _forward_torch(self, x: torch.Tensor) -> torch.Tensor:
        return self.lookup(x, self.tables)

    def lookup(self, x: torch.Tensor, tables: torch.Tensor) -> torch.Tensor:
        """The torch encoding of ``x`` (N, 3) in [0, 1] with other ``tables`` (levels, T, F) of this
        layout, e.g. tables blended per frame (genkit.render.avatar's global-hash baseline)."""
        x = x.clamp(0, 1)
        offsets = _CORNERS.to(x.device)
        out = []
        for lvl, r in enumerate(self.resolutions):
            pos = x * r
            cell = pos.floor().clamp(max=r - 1)
            frac = pos - cell  # (N, 3) in [0, 1]
            corners = cell.long()[:, None, :] + offsets[None]  # (N, 8, 3)
            idx = self.corner_indices(lvl, corners)  # (N, 8)
            w = torch.where(offsets[None].bool(), frac[:, None, :], 1 - frac[:, None, :]).prod(-1)  # (N, 8)
            feats = tables[lvl][idx]  # (N, 8, F)
            out.append((w[..., None] * feats).sum(1))
        return torch.cat(out, dim=-1)


class _TruncExp(torch.autograd.Function):
    """exp with its gradient computed at min(x, 15), as Instant-NGP does, so that large densities early
    in training do not blow up the update."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.exp(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.exp(x.clamp(max=15))


def trunc_exp(x: torch.Tensor) -> torch.Tensor:
    return _TruncExp.apply(x)


def spherical_harmonics(d: torch.Tensor) -> torch.Tensor:
    """Real spherical harmonics of degrees 0-3 of unit directions (N, 3) -> (N, 16)."""
    x, y, z = d.unbind(-1)
    xx, yy, zz = x * x, y * y, z * z
    return torch.stack(
        [
            torch.full_like(x, 0.28209479177387814),
            -0.48860251190291987 * y,
            0.48860251190291987 * z,
            -0.48860251190291987 * x,
            1.0925484305920792 * x * y,
            -1.0925484305920792 * y * z,
            0.94617469575755997 * zz - 0.31539156525251999,
            -1.0925484305920792 * x * z,
            0.54627421529603959 * (xx - yy),
            0.59004358992664352 * y * (-3 * xx + yy),
            2.8906114426405538 * x * y * z,
            0.45704579946446572 * y * (1 - 5 * zz),
            0.3731763325901154 * z * (5 * zz - 3),
            0.45704579946446572 * x * (1 - 5 * zz),
            1.4453057213202769 * z * (xx - yy),
            0.59004358992664352 * x * (-xx + 3 * yy),
        ],
        dim=-1,
    )
