"""NGPField: a hash-grid radiance field (Instant-NGP's): density from a hash grid and a small MLP,
view-dependent colour from the density features and spherical harmonics of the view direction."""

from __future__ import annotations

import torch
from torch import nn

from genkit.render.encodings import HashGridEncoding, spherical_harmonics, trunc_exp

__all__ = ["NGPField"]


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
