"""Metrics of a text-to-3D result against the exact procedural object (``genkit.data.objects3d``).

- ``silhouette_iou``: IoU of the rendered opacity (> 0.5) and the true silhouette, over given views
  (held-out views: cameras the optimisation never drew exactly).
- ``volume_iou``: IoU of the field's occupancy (density above the mesh threshold) and the object's, on a
  regular grid of the box [-1, 1]^3.
- ``marker_visible`` / ``janus_rate``: the front marker is black; a render "shows the marker" when enough
  pixels inside its silhouette are near black. A view from behind that shows it is a Janus view (a second
  front); the rate is over back views (azimuth 135-225 degrees).
- ``diversity``: mean pairwise RMS distance between renders of the same views from different seeds.

Render callables take cameras (B, 2) = (azimuth, elevation) in degrees and return (images (B, 3, R, R) in
[0, 1], opacity (B, 1, R, R)), e.g. ``lambda c: render_field(field, c, 32)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from genkit.data.objects3d import MARKER, Object3D, occupancy, render_views

__all__ = ["diversity", "janus_rate", "marker_visible", "silhouette_iou", "volume_iou"]

Render = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def silhouette_iou(render: Render, obj: Object3D, cameras: torch.Tensor, resolution: int = 32) -> float:
    _, opacity = render(cameras)
    truth = render_views(obj, cameras[:, 0].tolist(), cameras[:, 1].tolist(), resolution)["silhouette"]
    a, b = opacity > 0.5, truth > 0.5
    return float((a & b).sum() / (a | b).sum().clamp_min(1))


@torch.no_grad()
def volume_iou(density_fn: Callable, obj: Object3D, threshold: float, resolution: int = 64) -> float:
    axis = torch.linspace(-1, 1, resolution)
    pts = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    pred = torch.cat([density_fn(pts[i : i + 65536]) > threshold for i in range(0, len(pts), 65536)])
    truth = occupancy(obj.shape, pts)
    return float((pred & truth).sum() / (pred | truth).sum().clamp_min(1))


def marker_visible(images: torch.Tensor, opacity: torch.Tensor, min_pixels: int = 3) -> torch.Tensor:
    """(B,) bool: at least ``min_pixels`` near-black pixels inside the silhouette."""
    dark = (images.amax(1, keepdim=True) < MARKER + 0.08) & (opacity > 0.5)
    return dark.flatten(1).sum(1) >= min_pixels


def janus_rate(render: Render, elevation: float = 10.0, views: int = 8) -> float:
    """Share of back views (azimuth 135..225 degrees) that show the front marker."""
    az = torch.linspace(135, 225, views)
    cams = torch.stack([az, torch.full_like(az, elevation)], 1)
    return float(marker_visible(*render(cams)).float().mean())


def diversity(renders: list[torch.Tensor]) -> float:
    """Mean pairwise RMS distance between the images (B, 3, R, R) of the same views from several seeds."""
    if len(renders) < 2:
        raise ValueError("diversity needs renders from at least two seeds")
    d = [
        float((renders[i] - renders[j]).pow(2).mean().sqrt())
        for i in range(len(renders))
        for j in range(i + 1, len(renders))
    ]
    return sum(d) / len(d)
