"""Procedural 3-D objects seen from a camera: the data of genkit's text-to-3D (score distillation).

An object is one primitive (sphere, cube, cylinder, cone, torus) in one colour, centred at the origin of
a y-up world, with a small black *front marker* on its +z side, so a view from behind is distinguishable
from a view from the front (a multi-face "Janus" object shows the marker from the wrong side).

A view is a camera on a sphere of radius ``CAMERA_RADIUS`` looking at the origin, at azimuth ``az``
(degrees, 0 = in front on +z, 90 = on +x) and elevation ``el`` (degrees above the xz-plane). Captions
name the view as DreamFusion's prompts do: ``"front view of a red cube"`` (``view_word``: front within
45 degrees of azimuth 0, back within 45 of 180, side otherwise; overhead above 60 degrees of elevation).

Everything is exact: images come from sphere tracing the signed distance function (SDF), lit by a fixed
world-space light (diffuse, so a radiance field can reproduce it from any view); ``silhouette`` and
``occupancy`` give the ground truth the metrics compare against. Held-out (colour, shape) pairs
(``HELDOUT_PAIRS``) never appear in the ``"train"`` split.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch

from genkit.data.shapes import COLORS

__all__ = [
    "SHAPES3D",
    "COLORS3D",
    "HELDOUT_PAIRS",
    "VIEWS",
    "CAMERA_RADIUS",
    "FOCAL_FRACTION",
    "BACKGROUND",
    "Object3D",
    "objects",
    "view_word",
    "camera",
    "sdf",
    "occupancy",
    "render_views",
    "view_rays",
    "render_pool",
    "Objects3DDataset",
]

SHAPES3D: tuple[str, ...] = ("sphere", "cube", "cylinder", "cone", "torus")
COLORS3D: dict[str, tuple[int, int, int]] = {
    k: COLORS[k] for k in ("red", "green", "blue", "yellow", "purple")
}
HELDOUT_PAIRS: tuple[tuple[str, str], ...] = (("red", "torus"), ("green", "cone"), ("blue", "cube"))
VIEWS: tuple[str, ...] = ("front", "side", "back", "overhead")
CAMERA_RADIUS = 3.0
FOCAL_FRACTION = 1.6  # focal length as a fraction of the image side (a field of view of about 35 degrees)
BACKGROUND = 0.92  # the grey behind every object
MARKER = 0.06  # the marker's albedo
_LIGHT = torch.tensor([0.4, 0.8, 0.45]) / math.sqrt(0.4**2 + 0.8**2 + 0.45**2)
_AMBIENT = 0.35
SPLITS = ("train", "heldout", "all")

# The marker sits on each primitive's +z surface (centre, radius 0.16: it protrudes about half out).
_MARKER_AT = {
    "sphere": (0.0, 0.15, 0.58),
    "cube": (0.0, 0.15, 0.5),
    "cylinder": (0.0, 0.15, 0.5),
    "cone": (0.0, -0.2, 0.33),
    "torus": (0.0, 0.55, 0.2),
}
_MARKER_RADIUS = 0.16


@dataclass(frozen=True)
class Object3D:
    color: str
    shape: str

    def caption(self, view: str | None = None, color: bool = True) -> str:
        """``"a red cube"``, ``"front view of a red cube"``; ``color=False`` leaves the colour open
        (``"a cube"``: a cube of any colour, the prompt of an under-specified object)."""
        name = f"a {self.color} {self.shape}" if color else f"a {self.shape}"
        return name if view is None else f"{view} view of {name}"

    @property
    def heldout(self) -> bool:
        return (self.color, self.shape) in HELDOUT_PAIRS


def objects(split: str = "train") -> list[Object3D]:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    out = [Object3D(c, s) for c, s in itertools.product(COLORS3D, SHAPES3D)]
    return [o for o in out if split == "all" or (split == "heldout") == o.heldout]


def view_word(azimuth: float, elevation: float) -> str:
    if elevation > 60:
        return "overhead"
    a = azimuth % 360
    if a <= 45 or a >= 315:
        return "front"
    if 135 <= a <= 225:
        return "back"
    return "side"


def camera(azimuth: float, elevation: float, radius: float = CAMERA_RADIUS) -> torch.Tensor:
    """Camera-to-world (4, 4), OpenGL convention (``genkit.render.geometry``), looking at the origin."""
    from genkit.render.geometry import look_at

    az, el = math.radians(azimuth), math.radians(elevation)
    eye = (radius * math.cos(el) * math.sin(az), radius * math.sin(el), radius * math.cos(el) * math.cos(az))
    up = (0.0, 0.0, -1.0) if elevation > 89.9 else (0.0, 1.0, 0.0)
    return torch.from_numpy(look_at(eye, up=up))


# --- signed distances ---------------------------------------------------------------------------------
def _primitive_sdf(shape: str, p: torch.Tensor) -> torch.Tensor:
    x, y, z = p.unbind(-1)
    if shape == "sphere":
        return p.norm(dim=-1) - 0.6
    if shape == "cube":
        q = p.abs() - 0.45
        return q.clamp_min(0).norm(dim=-1) + q.amax(-1).clamp_max(0) - 0.05  # rounded edges
    if shape == "cylinder":
        d = torch.stack([torch.sqrt(x**2 + z**2) - 0.5, y.abs() - 0.5], -1)
        return d.clamp_min(0).norm(dim=-1) + d.amax(-1).clamp_max(0)
    if shape == "cone":  # apex at y = +0.6, base radius 0.6 at y = -0.5 (exact capped-cone distance)
        r, h, yb = 0.6, 1.1, -0.5
        q = torch.stack([torch.sqrt(x**2 + z**2), y - yb], -1)
        # distance to the slanted side segment from (r, 0) to (0, h) and to the base disc
        a, b = torch.tensor([r, 0.0]), torch.tensor([0.0, h])
        ab = b - a
        t = ((q - a) @ ab / (ab @ ab)).clamp(0, 1)
        d_side = (q - (a + t[..., None] * ab)).norm(dim=-1)
        d_base = torch.stack([(q[..., 0] - r).clamp_min(0), q[..., 1]], -1).norm(dim=-1)
        inside = (q[..., 1] > 0) & (q[..., 1] < h) & (q[..., 0] < r * (1 - q[..., 1] / h))
        return torch.where(inside, -1.0, 1.0) * torch.minimum(d_side, d_base)
    if shape == "torus":  # ring in the xy-plane facing the front (major 0.45, minor 0.18)
        return torch.stack([torch.sqrt(x**2 + y**2) - 0.45, z], -1).norm(dim=-1) - 0.18
    raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES3D}")


def sdf(shape: str, p: torch.Tensor, marker: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(signed distance, is-marker) of points ``p`` (..., 3) to the object ``shape`` (with its marker)."""
    d = _primitive_sdf(shape, p)
    if not marker:
        return d, torch.zeros_like(d, dtype=torch.bool)
    dm = (p - torch.tensor(_MARKER_AT[shape], dtype=p.dtype)).norm(dim=-1) - _MARKER_RADIUS
    return torch.minimum(d, dm), dm < d


def occupancy(shape: str, p: torch.Tensor) -> torch.Tensor:
    """Whether points ``p`` (..., 3) lie inside the object (marker included)."""
    return sdf(shape, p)[0] <= 0


# --- rendering ----------------------------------------------------------------------------------------
def view_rays(azimuth, elevation, resolution: int, device: torch.device | str = "cpu"):
    """(origins, directions) of every pixel of every view, (views * R * R, 3) in one batch, and the cameras
    (views, 4, 4); ``azimuth`` and ``elevation`` in degrees (scalars or sequences, broadcast)."""
    from genkit.render.geometry import camera_rays

    az = np.atleast_1d(np.asarray(azimuth, dtype=np.float64))
    el = np.atleast_1d(np.asarray(elevation, dtype=np.float64))
    az, el = np.broadcast_arrays(az, el)
    c2ws = torch.stack([camera(a, e) for a, e in zip(az, el, strict=True)]).to(device)
    rays = [camera_rays(c2w, FOCAL_FRACTION * resolution, resolution, resolution) for c2w in c2ws]
    return torch.cat([r[0] for r in rays]), torch.cat([r[1] for r in rays]), c2ws


def render_views(
    obj: Object3D, azimuth, elevation, resolution: int = 32, supersample: int = 2
) -> dict[str, torch.Tensor]:
    """Sphere-trace ``obj`` from each (azimuth, elevation): ``image`` (n, 3, R, R) in [0, 1] over the
    grey background, ``silhouette`` (n, 1, R, R) coverage in [0, 1], ``depth`` (n, 1, R, R) (0 where
    empty), ``marker`` (n, 1, R, R) the coverage of the front marker and the cameras ``c2w`` (n, 4, 4).
    Anti-aliased by ``supersample``^2 rays per pixel."""

    res = resolution * supersample
    o, d, c2ws = view_rays(azimuth, elevation, res)
    albedo = torch.tensor(COLORS3D[obj.color], dtype=torch.float32) / 255
    t = torch.full(d.shape[:1], CAMERA_RADIUS - 1.2)
    for _ in range(48):
        dist, _ = sdf(obj.shape, o + t[:, None] * d)
        t = t + 0.9 * dist.clamp_min(0) + 1e-4 * (dist > 0)
    p = o + t[:, None] * d
    dist, is_marker = sdf(obj.shape, p)
    hit = dist < 2e-3
    eps = 1e-3
    n = torch.stack(
        [sdf(obj.shape, p + eps * e)[0] - sdf(obj.shape, p - eps * e)[0] for e in torch.eye(3)], -1
    )
    n = n / n.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    shade = _AMBIENT + (1 - _AMBIENT) * (n @ _LIGHT).clamp_min(0)
    colour = torch.where(is_marker[:, None], torch.full((3,), MARKER), albedo) * shade[:, None]
    colour = torch.where(hit[:, None], colour, torch.full((3,), BACKGROUND))

    def pool(v: torch.Tensor) -> torch.Tensor:  # (views * res * res, C) -> (views, C, R, R)
        v = v.view(len(c2ws), res, res, -1).permute(0, 3, 1, 2)
        return torch.nn.functional.avg_pool2d(v, supersample)

    return {
        "image": pool(colour).clamp(0, 1),
        "silhouette": pool(hit.float()[:, None]),
        "depth": pool((t * hit)[:, None]),
        "marker": pool((hit & is_marker).float()[:, None]),
        "c2w": c2ws,
    }


class Objects3DDataset(torch.utils.data.Dataset):
    """``num`` seeded (object, view) pairs of a split: item i is drawn from ``default_rng([seed, i])``.
    Azimuth is uniform on [0, 360), elevation uniform on [-10, 80] degrees. Items hold ``pixel_values`` in
    [-1, 1], ``caption`` (with the view word), ``camera`` (azimuth, elevation in degrees) and the object."""

    def __init__(self, num: int, resolution: int = 32, seed: int = 0, split: str = "train"):
        self.num, self.resolution, self.seed = num, resolution, seed
        self.objects = objects(split)

    def __len__(self) -> int:
        return self.num

    def item_view(self, i: int) -> tuple[Object3D, float, float]:
        rng = np.random.default_rng([self.seed, i])
        obj = self.objects[int(rng.integers(len(self.objects)))]
        return obj, float(rng.uniform(0, 360)), float(rng.uniform(-10, 80))

    def __getitem__(self, i: int) -> dict:
        obj, az, el = self.item_view(i)
        image = render_views(obj, az, el, self.resolution)["image"][0]
        return {
            "pixel_values": image * 2 - 1,
            "caption": obj.caption(view_word(az, el)),
            "camera": torch.tensor([az, el], dtype=torch.float32),
            "color": obj.color,
            "shape": obj.shape,
        }


def render_pool(num: int, resolution: int = 32, seed: int = 0, split: str = "train", progress: bool = True):
    """Items 0..num-1 of ``Objects3DDataset(num, resolution, seed, split)`` rendered at once (a training
    pool): ``pixel_values`` (num, 3, R, R) in [-1, 1], ``captions``, ``cameras`` (num, 2) in degrees,
    ``objects`` and ``marker_pixels`` (num,), how many pixels the front marker covers."""
    from tqdm import tqdm

    ds = Objects3DDataset(num, resolution, seed, split)
    items = [ds.item_view(i) for i in range(num)]
    images = torch.empty(num, 3, resolution, resolution)
    marker = torch.empty(num)
    by_object: dict[Object3D, list[int]] = {}
    for i, (obj, _, _) in enumerate(items):
        by_object.setdefault(obj, []).append(i)
    with tqdm(total=num, desc="render objects", unit="img", disable=not progress) as bar:
        for obj, idx in by_object.items():
            for k in range(0, len(idx), 64):
                chunk = idx[k : k + 64]
                out = render_views(
                    obj, [items[i][1] for i in chunk], [items[i][2] for i in chunk], resolution
                )
                images[chunk] = out["image"]
                marker[chunk] = out["marker"].sum((1, 2, 3))
                bar.update(len(chunk))
    return {
        "pixel_values": images * 2 - 1,
        "captions": [obj.caption(view_word(az, el)) for obj, az, el in items],
        "cameras": torch.tensor([[az, el] for _, az, el in items], dtype=torch.float32),
        "objects": [obj for obj, _, _ in items],
        "marker_pixels": marker,
    }
