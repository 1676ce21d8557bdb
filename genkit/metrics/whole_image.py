"""Metrics that see the whole image, background included.

The oracle classifier behind prompt accuracy and FD is trained to read shape, colour, position and size
and to ignore everything else (the background tone, blur, noise), so its feature space cannot vouch for
the background. Two measures that do:

- ``WholeImageFeatures``: a small convolutional network with fixed random weights (seeded, never trained,
  so never taught to ignore anything); the means of its activations at three scales. The Fréchet distance
  in this space (``fd_whole``) sees the distribution of background tones, colours and textures.
- ``background_artifacts``: per image, the fraction of pixels that are grey (achromatic) and differ from
  the image's background tone (the median colour of its 2-pixel border) by more than ``tau``: patches of
  another grey, which a procedural image never has (its shape is saturated colour, its background one
  grey). ``artifact_rate`` is the fraction of images where such pixels cover more than ``threshold`` of
  the image (real data: 0 of 2000 at the defaults; the most any real image has is 0.8%).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["WholeImageFeatures", "artifact_rate", "background_artifacts", "whole_image_features"]


class WholeImageFeatures(nn.Module):
    """Images in [-1, 1] (N, 3, H, W) -> (N, 224): the spatial means of the ReLU activations of three
    3x3 convolutions (32, 64, 128 channels, 2x average pooling between them) with He-normal weights drawn
    from ``seed``."""

    def __init__(self, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.convs = nn.ModuleList()
        for c_in, c_out in ((3, 32), (32, 64), (64, 128)):
            conv = nn.Conv2d(c_in, c_out, 3, padding=1)
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * (2 / (c_in * 9)) ** 0.5)
                conv.bias.zero_()
            self.convs.append(conv)
        self.requires_grad_(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out, h = [], images.float()
        for conv in self.convs:
            h = torch.relu(conv(h))
            out.append(h.mean((2, 3)))
            h = nn.functional.avg_pool2d(h, 2)
        return torch.cat(out, 1)


_FEATURES = WholeImageFeatures()


def whole_image_features(images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """``WholeImageFeatures`` (seed 0) of images in [-1, 1], in batches, on the CPU."""
    return torch.cat([_FEATURES(images[i : i + batch_size].cpu()) for i in range(0, len(images), batch_size)])


def background_artifacts(images: torch.Tensor, tau: float = 0.1, chroma: float = 0.1) -> torch.Tensor:
    """Per image (N,), the fraction of pixels that are achromatic (max - min channel below ``chroma``) and
    differ from the border's median colour by more than ``tau`` in some channel (images in [-1, 1];
    thresholds on the [0, 1] scale)."""
    x = (images.float().clamp(-1, 1) + 1) / 2
    border = torch.cat(
        [
            x[..., :2, :].flatten(2),
            x[..., -2:, :].flatten(2),
            x[..., 2:-2, :2].flatten(2),
            x[..., 2:-2, -2:].flatten(2),
        ],
        -1,
    )
    background = border.median(-1).values[..., None, None]  # (N, 3, 1, 1)
    off = (x - background).abs().amax(1) > tau
    grey = (x.amax(1) - x.amin(1)) < chroma
    return (off & grey).float().mean((1, 2))


def artifact_rate(images: torch.Tensor, threshold: float = 0.02) -> float:
    """The fraction of images whose ``background_artifacts`` exceed ``threshold`` (2% of the pixels: 20 of
    a 32x32 image)."""
    return float((background_artifacts(images) > threshold).float().mean())
