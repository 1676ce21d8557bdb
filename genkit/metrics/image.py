"""Image-quality metrics of rendered views: PSNR and SSIM (own implementation, Wang et al. 2004), each with
an optional mask (e.g. inside an avatar's head mask)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """PSNR (dB) of two (H, W, 3) images in [0, 1], over the pixels inside ``mask`` (H, W) if given."""
    if mask is not None:
        a, b = a[mask], b[mask]
    return float(-10 * torch.log10(F.mse_loss(a, b).clamp(min=1e-10)))


def ssim(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """SSIM of two (H, W, 3) images in [0, 1]: 11x11 Gaussian window (sigma 1.5), valid windows only,
    averaged over all windows or over those whose centre lies inside ``mask`` (H, W)."""
    x = torch.arange(11, dtype=torch.float32) - 5
    g = torch.exp(-(x**2) / (2 * 1.5**2))
    w = ((g[:, None] * g[None, :]) / g.sum() ** 2).expand(3, 1, 11, 11)
    a, b = a.float().permute(2, 0, 1)[None], b.float().permute(2, 0, 1)[None]

    def blur(z):
        return F.conv2d(z, w, groups=3)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    if mask is None:
        return float(s.mean())
    inner = mask[5:-5, 5:-5]
    return float(s[0].mean(0)[inner].mean())
