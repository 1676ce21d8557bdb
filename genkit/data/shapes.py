"""Procedural, captioned "shapes" images: the data every genkit model is trained and measured on.

Each image holds one flat-coloured shape on a neutral background and comes with a plain-English
caption that names its size, colour, shape and position, e.g. ``"a small red circle at the top left"``.
The background tone, and a small jitter of position, size and scale, are left out of the caption, so a
prompt has many correct images (that is what the diversity metric measures).

Held-out combinations
---------------------
Four colour-shape pairs never appear in the ``"train"`` split (:data:`HELDOUT_PAIRS`):
red cross, green circle, blue triangle and yellow square, each at every position and size
(40 of the 200 attribute combinations). Every word still appears in training, in other pairs, so the
``"heldout"`` split measures compositional generalization. The oracle classifier used by the metrics is
trained on ``"all"`` (it is a measuring instrument, not a generator).

Determinism
-----------
Everything is drawn from ``numpy.random.default_rng([seed, index])``: item ``i`` of a dataset and batch
``k`` of a stream are the same on every machine and process, so a resumed training run sees the same
data it would have seen without the interruption.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = [
    "SHAPES",
    "COLORS",
    "POSITIONS",
    "SIZES",
    "BACKGROUNDS",
    "HELDOUT_PAIRS",
    "ShapeAttributes",
    "combinations",
    "caption",
    "parse_caption",
    "sample_attributes",
    "render",
    "draw",
    "ShapesDataset",
    "shapes_stream",
    "prompt_set",
]

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross")
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 90, 230),
    "yellow": (235, 205, 35),
    "purple": (150, 60, 200),
}
# Shape centre as (x, y) fractions of the image side.
POSITIONS: dict[str, tuple[float, float]] = {
    "top left": (0.28, 0.28),
    "top right": (0.72, 0.28),
    "bottom left": (0.28, 0.72),
    "bottom right": (0.72, 0.72),
    "center": (0.5, 0.5),
}
# Shape "radius" as a fraction of the image side.
SIZES: dict[str, float] = {"small": 0.12, "large": 0.21}
# Background grey levels; not captioned.
BACKGROUNDS: tuple[int, ...] = (245, 190, 80, 15)
HELDOUT_PAIRS: tuple[tuple[str, str], ...] = (
    ("red", "cross"),
    ("green", "circle"),
    ("blue", "triangle"),
    ("yellow", "square"),
)
SPLITS = ("train", "heldout", "all")
_SUPERSAMPLE = 4


@dataclass(frozen=True)
class ShapeAttributes:
    """The captioned attributes of one image."""

    size: str
    color: str
    shape: str
    position: str

    def caption(self) -> str:
        where = "in the center" if self.position == "center" else f"at the {self.position}"
        return f"a {self.size} {self.color} {self.shape} {where}"

    @property
    def heldout(self) -> bool:
        return (self.color, self.shape) in HELDOUT_PAIRS


def combinations(split: str = "train") -> list[ShapeAttributes]:
    """All attribute combinations of a split, in a fixed order."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    out = []
    for size, color, shape, position in itertools.product(SIZES, COLORS, SHAPES, POSITIONS):
        a = ShapeAttributes(size, color, shape, position)
        if split == "all" or (split == "heldout") == a.heldout:
            out.append(a)
    return out


def caption(attrs: ShapeAttributes) -> str:
    return attrs.caption()


def parse_caption(text: str) -> ShapeAttributes:
    """Inverse of :func:`caption`. Raises ``ValueError`` for text outside the caption grammar."""
    words = " ".join(text.lower().strip().rstrip(".").split())
    for a in combinations("all"):
        if a.caption() == words:
            return a
    raise ValueError(
        f"prompt {text!r} is not in the shapes grammar (e.g. 'a small red circle at the top left')"
    )


def sample_attributes(n: int, rng: np.random.Generator, split: str = "train") -> dict[str, np.ndarray]:
    """Draw ``n`` attribute combinations uniformly from ``split``, plus the uncaptioned jitter.

    Returns integer indices into SIZES/COLORS/SHAPES/POSITIONS/BACKGROUNDS and float jitters.
    """
    combos = combinations(split)
    pick = rng.integers(0, len(combos), size=n)
    sizes, colors, shapes, positions = list(SIZES), list(COLORS), list(SHAPES), list(POSITIONS)
    return {
        "size": np.array([sizes.index(combos[i].size) for i in pick]),
        "color": np.array([colors.index(combos[i].color) for i in pick]),
        "shape": np.array([shapes.index(combos[i].shape) for i in pick]),
        "position": np.array([positions.index(combos[i].position) for i in pick]),
        "background": rng.integers(0, len(BACKGROUNDS), size=n),
        "offset": rng.uniform(-0.04, 0.04, size=(n, 2)),
        "scale": rng.uniform(0.9, 1.1, size=n),
    }


def attributes_at(attrs: dict[str, np.ndarray], i: int) -> ShapeAttributes:
    return ShapeAttributes(
        list(SIZES)[attrs["size"][i]],
        list(COLORS)[attrs["color"][i]],
        SHAPES[attrs["shape"][i]],
        list(POSITIONS)[attrs["position"][i]],
    )


def render(attrs: dict[str, np.ndarray], resolution: int = 32) -> torch.Tensor:
    """Render a batch of attributes to float images in [0, 1], shape (n, 3, resolution, resolution).

    Shapes are anti-aliased by 4x supersampling. Fully vectorised over the batch.
    """
    centre = torch.tensor([list(POSITIONS.values())[p] for p in attrs["position"]], dtype=torch.float32)
    centre = centre + torch.as_tensor(attrs["offset"], dtype=torch.float32)
    radius = torch.tensor([list(SIZES.values())[s] for s in attrs["size"]], dtype=torch.float32)
    radius = radius * torch.as_tensor(attrs["scale"], dtype=torch.float32)
    return draw(attrs["shape"], attrs["color"], attrs["background"], centre, radius, resolution)


def draw(
    shape, color, background, centre: torch.Tensor, radius: torch.Tensor, resolution: int = 32
) -> torch.Tensor:
    """Images (n, 3, R, R) in [0, 1] of one shape each: indices ``shape``, ``color`` and ``background``
    (n,) into SHAPES, COLORS and BACKGROUNDS, ``centre`` (n, 2) as (x, y) fractions of the side,
    ``radius`` (n,) as a fraction of the side. Anti-aliased by 4x supersampling."""
    n = len(shape)
    res = resolution * _SUPERSAMPLE
    coords = (torch.arange(res, dtype=torch.float32) + 0.5) / res
    radius = radius.view(n, 1, 1)
    dx = coords.view(1, 1, res) - centre[:, 0].view(n, 1, 1)
    dy = coords.view(1, res, 1) - centre[:, 1].view(n, 1, 1)
    shape = torch.as_tensor(shape).view(n, 1, 1)
    circle = dx.square() + dy.square() <= radius.square()
    square = torch.maximum(dx.abs(), dy.abs()) <= 0.85 * radius
    # Upward triangle: apex at -r, base at +0.75 r with half-width r.
    triangle = (dy <= 0.75 * radius) & (dx.abs() <= (dy + radius) / 1.75)
    arm = 0.33 * radius
    cross = ((dx.abs() <= arm) & (dy.abs() <= radius)) | ((dy.abs() <= arm) & (dx.abs() <= radius))
    mask = torch.where(
        shape == 0, circle, torch.where(shape == 1, square, torch.where(shape == 2, triangle, cross))
    )
    alpha = torch.nn.functional.avg_pool2d(mask.float().unsqueeze(1), _SUPERSAMPLE)  # (n, 1, R, R)
    fg = torch.tensor([list(COLORS.values())[c] for c in color], dtype=torch.float32) / 255.0
    bg = torch.tensor([BACKGROUNDS[b] for b in background], dtype=torch.float32) / 255.0
    return bg.view(n, 1, 1, 1) * (1 - alpha) + fg.view(n, 3, 1, 1) * alpha


def _batch(attrs: dict[str, np.ndarray], resolution: int) -> dict:
    images = render(attrs, resolution)
    n = images.shape[0]
    return {
        "pixel_values": images * 2 - 1,  # [-1, 1], as diffusers' VAEs expect
        "caption": [attributes_at(attrs, i).caption() for i in range(n)],
        "labels": {k: torch.as_tensor(attrs[k]) for k in ("shape", "color", "position", "size")},
    }


class ShapesDataset(Dataset):
    """A fixed, seeded set of ``num_samples`` captioned images (a map-style torch Dataset).

    Items are dicts with ``pixel_values`` (3, R, R) in [-1, 1], ``caption`` (str) and ``labels``
    (dict of int tensors: shape, color, position, size).
    """

    def __init__(self, num_samples: int, resolution: int = 32, seed: int = 0, split: str = "train"):
        if num_samples <= 0 or resolution < 8:
            raise ValueError("num_samples must be positive and resolution at least 8")
        self.resolution = resolution
        self.attrs = sample_attributes(num_samples, np.random.default_rng([seed, 0]), split)

    def __len__(self) -> int:
        return len(self.attrs["shape"])

    def __getitem__(self, i: int) -> dict:
        one = {k: v[i : i + 1] for k, v in self.attrs.items()}
        b = _batch(one, self.resolution)
        return {
            "pixel_values": b["pixel_values"][0],
            "caption": b["caption"][0],
            "labels": {k: v[0] for k, v in b["labels"].items()},
        }

    def attrs_caption(self, i: int) -> str:
        return attributes_at(self.attrs, i).caption()

    def batch(self, indices) -> dict:
        """Render several items at once (much faster than stacking ``__getitem__``)."""
        idx = np.asarray(indices)
        return _batch({k: v[idx] for k, v in self.attrs.items()}, self.resolution)


def shapes_stream(
    batch_size: int, resolution: int = 32, seed: int = 0, split: str = "train", start: int = 0
) -> Iterator[dict]:
    """An infinite stream of batches; batch ``k`` depends only on (seed, k), so ``start`` resumes it."""
    for k in itertools.count(start):
        rng = np.random.default_rng([seed, 1, k])
        yield _batch(sample_attributes(batch_size, rng, split), resolution)


def prompt_set(split: str = "train", n: int | None = None, seed: int = 0) -> list[str]:
    """Captions of a split for evaluation: all combinations, or ``n`` of them drawn without replacement."""
    caps = [a.caption() for a in combinations(split)]
    if n is None or n >= len(caps):
        return caps
    pick = np.random.default_rng([seed, 2]).choice(len(caps), size=n, replace=False)
    return [caps[i] for i in sorted(pick)]
