"""Metrics of a text-to-3D result against the exact procedural object (``genkit.data.objects3d``).

- ``silhouette_iou``: IoU of the rendered opacity (> 0.5) and the true silhouette, over given views
  (held-out views: cameras the optimisation never drew exactly).
- ``volume_iou``: IoU of the field's occupancy (density above the mesh threshold) and the object's, on a
  regular grid of the box [-1, 1]^3.
- ``marker_visible`` / ``janus_rate``: the front marker is black; a render "shows the marker" when a
  3x3 patch inside its silhouette is mostly near black (a blob, not dark speckles). A view from behind
  that shows it is a Janus view (a second front); the rate is over back views (azimuth 135-225 degrees,
  elevation -10: from at or above the horizon the torus's marker shows over its rim from behind, from
  -10 no object's does), with this analytic detector or any other (e.g. the classifier's ``marker`` head).
- ``diversity``: mean pairwise RMS distance between renders of the same views from different seeds.
- ``Objects3DClassifier``: a small CNN trained from scratch on the procedural views (every colour-shape
  pair, held-out ones included) by ``genkit train objects3d-classifier``, with the degradations generated
  images show; it reads shape, colour and whether the front marker is in view. ``attribute_accuracy``:
  the share of renders whose shape and colour it reads as the prompt's; ``color_read``: the colour it
  reads in most views of an object (which colour a prompt that leaves it open came out in).

Render callables take cameras (B, 2) = (azimuth, elevation) in degrees and return (images (B, 3, R, R) in
[0, 1], opacity (B, 1, R, R)), e.g. ``lambda c: render_field(field, c, 32)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config

from genkit.data.objects3d import COLORS3D, MARKER, SHAPES3D, Object3D, occupancy, render_views
from genkit.metrics.classifier import AttributeHeads
from genkit.utils import reading

__all__ = [
    "MARKER_PIXELS",
    "OBJECT_HEADS",
    "Objects3DClassifier",
    "attribute_accuracy",
    "color_read",
    "diversity",
    "janus_rate",
    "load_objects3d_classifier",
    "marker_visible",
    "silhouette_iou",
    "volume_iou",
]

OBJECT_HEADS = ("shape", "color", "marker")
MARKER_PIXELS = 2.0  # a view "shows the marker" when it covers at least this many pixels (32x32 views)

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


def marker_visible(images: torch.Tensor, opacity: torch.Tensor, fill: float = 0.67) -> torch.Tensor:
    """(B,) bool: some 3x3 patch inside the silhouette is at least ``fill`` near-black pixels."""
    dark = ((images.amax(1, keepdim=True) < MARKER + 0.08) & (opacity > 0.5)).float()
    return F.avg_pool2d(dark, 3, stride=1).flatten(1).amax(1) >= fill - 1e-6


def janus_rate(
    render: Render,
    elevation: float = -10.0,
    views: int = 8,
    shows_marker: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = marker_visible,
) -> float:
    """Share of back views (azimuth 135..225 degrees) that show the front marker, by ``shows_marker``
    (images in [0, 1], opacity) -> (B,) bool."""
    az = torch.linspace(135, 225, views)
    cams = torch.stack([az, torch.full_like(az, elevation)], 1)
    return float(shows_marker(*render(cams)).float().mean())


class Objects3DClassifier(AttributeHeads, ModelMixin, ConfigMixin):
    """Views in [-1, 1], (B, 3, R, R) -> logits of shape (``SHAPES3D``), colour (``COLORS3D``) and marker
    (0: not in view, 1: in view) and a ``feature_dim`` feature vector."""

    @register_to_config
    def __init__(self, resolution: int = 32, width: int = 32, feature_dim: int = 128):
        super().__init__()
        self._build(
            resolution, width, feature_dim, {"shape": len(SHAPES3D), "color": len(COLORS3D), "marker": 2}
        )

    def shows_marker(self, images: torch.Tensor, opacity: torch.Tensor | None = None) -> torch.Tensor:
        """(B,) bool from the marker head, for ``janus_rate`` (images in [0, 1]; opacity unused)."""
        return self.predict(images * 2 - 1)["marker"].bool()


def load_objects3d_classifier(path: str | None = None, device: str | torch.device = "cpu"):
    """The 3-D views' classifier: the bundled one, or a folder of ``genkit train objects3d-classifier``."""
    if path is None:
        from genkit.loading import bundled_path

        path = str(bundled_path("objects3d-classifier"))
    with reading(f"could not load the 3-D views' classifier from {path!r}", (Exception,)):
        return Objects3DClassifier.from_pretrained(path).to(device).float().eval()


def attribute_accuracy(
    classifier: Objects3DClassifier, images: torch.Tensor, obj: Object3D, color: bool = True
) -> float:
    """Share of ``images`` (B, 3, R, R) in [0, 1] whose shape and colour the classifier reads as ``obj``'s
    (``color=False``: the shape only, for a prompt that leaves the colour open)."""
    p = classifier.predict(images * 2 - 1)
    ok = p["shape"] == SHAPES3D.index(obj.shape)
    if color:
        ok &= p["color"] == list(COLORS3D).index(obj.color)
    return float(ok.float().mean())


def color_read(classifier: Objects3DClassifier, images: torch.Tensor) -> str:
    """The colour the classifier reads in most of ``images`` (B, 3, R, R) in [0, 1] (views of one object)."""
    p = classifier.predict(images * 2 - 1)["color"]
    return list(COLORS3D)[int(torch.bincount(p, minlength=len(COLORS3D)).argmax())]


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
