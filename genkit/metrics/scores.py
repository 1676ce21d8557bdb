"""Metrics on oracle features and predictions: FD, precision/recall, diversity, prompt accuracy.

All functions take plain tensors, so they work for any generator and any folder of images.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import linalg


def frechet_distance(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID formula, in oracle space).

    ``||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2))``.
    """
    a, b = real.double().numpy(), fake.double().numpy()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(covmean).all():  # numerically singular product: regularise as in pytorch-fid
        eps = np.eye(a.shape[1]) * 1e-6
        covmean = linalg.sqrtm((cov_a + eps) @ (cov_b + eps))
    covmean = covmean.real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(covmean))


def _kth_nn_radius(x: torch.Tensor, k: int) -> torch.Tensor:
    d = torch.cdist(x, x)
    return d.kthvalue(k + 1, dim=1).values  # +1 skips the point itself


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN manifolds in feature space.

    Precision: fraction of fake samples inside the real manifold; recall: fraction of real samples inside
    the fake manifold.
    """
    real, fake = real.float(), fake.float()
    r_real, r_fake = _kth_nn_radius(real, k), _kth_nn_radius(fake, k)
    d = torch.cdist(fake, real)  # (F, R)
    precision = (d <= r_real.unsqueeze(0)).any(dim=1).float().mean().item()
    recall = (d.T <= r_fake.unsqueeze(0)).any(dim=1).float().mean().item()
    return precision, recall


def diversity(features: torch.Tensor, groups: list) -> float:
    """Mean pairwise L2 feature distance among samples of the same group (prompt), averaged over groups."""
    by_group: dict = {}
    for i, g in enumerate(groups):
        by_group.setdefault(g, []).append(i)
    vals = []
    for idx in by_group.values():
        if len(idx) < 2:
            continue
        f = features[idx].float()
        d = torch.cdist(f, f)
        n = len(idx)
        vals.append((d.sum() / (n * (n - 1))).item())
    return float(np.mean(vals)) if vals else float("nan")


def prompt_accuracy(pred: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> float:
    """Fraction of images whose predicted shape, colour and position all match the prompt (GenEval-style)."""
    ok = (
        (pred["shape"] == target["shape"])
        & (pred["color"] == target["color"])
        & (pred["position"] == target["position"])
    )
    return ok.float().mean().item()
