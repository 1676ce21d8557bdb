"""CameraEncoder: a camera (azimuth, elevation) as extra cross-attention tokens for a text-to-image UNet.

The view-conditioned prior of genkit's text-to-3D appends these tokens to the text encoder's states, so
the denoiser stays a plain ``UNet2DConditionModel`` called as ``unet(x_t, t, encoder_hidden_states)``:
any code that takes a Stable Diffusion folder (diffusers' pipelines, genkit's score distillation) runs
it, with or without a camera. Features are (sin, cos) of the angles at a few frequencies, so azimuth
wraps around; an MLP maps them to ``num_tokens`` tokens of the text width.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config

__all__ = ["CameraEncoder", "camera_features"]


def camera_features(camera: torch.Tensor, frequencies: int) -> torch.Tensor:
    """(B, 4 * frequencies): sin and cos of k * azimuth and k * elevation, k = 1..frequencies;
    ``camera`` (B, 2) in degrees."""
    k = torch.arange(1, frequencies + 1, device=camera.device, dtype=torch.float32)
    ang = torch.deg2rad(camera.float())[:, :, None] * k  # (B, 2, F)
    return torch.cat([ang.sin(), ang.cos()], -1).flatten(1)


class CameraEncoder(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(self, hidden_size: int = 64, num_tokens: int = 2, frequencies: int = 3, width: int = 128):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(4 * frequencies, width), nn.SiLU(), nn.Linear(width, num_tokens * hidden_size)
        )

    def forward(self, camera: torch.Tensor) -> torch.Tensor:
        """Tokens (B, num_tokens, hidden_size) of cameras (B, 2) = (azimuth, elevation) in degrees."""
        c = self.config
        feats = camera_features(camera.to(self.device), c.frequencies).to(self.dtype)
        return self.net(feats).view(len(camera), c.num_tokens, c.hidden_size)
