"""NGPField: a hash-grid radiance field (Instant-NGP's): density from a hash grid and a small MLP,
view-dependent colour from the density features and spherical harmonics of the view direction."""

from __future__ import annotations

import torch
from torch import nn

from genkit.render.encodings import HashGridEncoding

__all__ = ["NGPField", "spherical_harmonics", "trunc_exp"]


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


class NGPField(nn.Module):
    def __init__(
        self,
        aabb,
        levels: int = 16,
        features_per_level: int = 2,
        log2_table_size: int = 19,
        base_resolution: int = 16,
        max_resolution: int = 2048,
        hidden: int = 64,
        geo_features: int = 15,
    ):
        super().__init__()
        self.register_buffer("aabb", torch.as_tensor(aabb, dtype=torch.float32))
        self.encoding = HashGridEncoding(
            levels, features_per_level, log2_table_size, base_resolution, max_resolution
        )
        self.density_mlp = nn.Sequential(
            nn.Linear(self.encoding.out_dim, hidden), nn.ReLU(), nn.Linear(hidden, 1 + geo_features)
        )
        self.colour_mlp = nn.Sequential(
            nn.Linear(geo_features + 16, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 3),
        )

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.aabb[:3]) / (self.aabb[3:] - self.aabb[:3])

    def _density(self, x: torch.Tensor):
        u = self.normalize(x)
        inside = ((u >= 0) & (u <= 1)).all(-1)
        h = self.density_mlp(self.encoding(u))
        sigma = trunc_exp(h[:, 0] - 1.0) * inside  # the -1 bias starts the field nearly empty
        return sigma, h[:, 1:]

    def density(self, x: torch.Tensor) -> torch.Tensor:
        """Densities (N,) at world points (N, 3); zero outside the box."""
        return self._density(x)[0]

    def forward(self, x: torch.Tensor, directions: torch.Tensor):
        """(rgb (N, 3) in [0, 1], sigma (N,)) at world points and unit view directions."""
        sigma, geo = self._density(x)
        rgb = torch.sigmoid(self.colour_mlp(torch.cat([geo, spherical_harmonics(directions)], -1)))
        return rgb, sigma
