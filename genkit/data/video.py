"""Procedural, captioned "moving shapes" videos: the shapes domain in motion.

Each clip shows one shape of ``genkit.data.shapes`` (shape, colour, a background grey) moving across the
frame or changing size, with a caption that names it: ``"a small red circle moving left"``, ``"a blue
square growing"``. ``MOTIONS``: moving left / right / up / down (the size word is captioned, the radius
stays), growing and shrinking (from about the small size to beyond the large one, or back; no size word).
The start position (inside the frame for the whole clip), the background and a small jitter of size and
travel are left out of the caption.

Held-out combinations: the (colour, shape, motion) triples of :data:`HELDOUT_TRIPLES` (two per motion)
never appear in the ``"train"`` split; every colour, shape and motion, and every colour-shape pair, still
appears in others, so the ``"heldout"`` split measures compositional generalization in time.

Everything is drawn from ``numpy.random.default_rng([seed, index])``, as the image data: clip ``i`` is
the same on every machine and process.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np
import torch

from genkit.data.shapes import BACKGROUNDS, COLORS, SHAPES, SIZES, draw

__all__ = [
    "HELDOUT_TRIPLES",
    "MOTIONS",
    "REVERSED_MOTION",
    "VideoAttributes",
    "VideoDataset",
    "prompt_path",
    "parse_video_caption",
    "time_reversed",
    "video_combinations",
    "video_prompt_set",
]

MOTIONS: tuple[str, ...] = ("moving left", "moving right", "moving up", "moving down", "growing", "shrinking")
DIRECTIONS = {"moving left": (-1, 0), "moving right": (1, 0), "moving up": (0, -1), "moving down": (0, 1)}
TRAVEL = 0.36  # the distance a moving shape covers in a clip, as a fraction of the side
GROWTH = (0.09, 0.21)  # the radius of a growing shape from the first to the last frame (shrinking: reversed)
HELDOUT_TRIPLES: tuple[tuple[str, str, str], ...] = (
    ("red", "square", "moving left"),
    ("green", "triangle", "moving left"),
    ("blue", "cross", "moving right"),
    ("yellow", "circle", "moving right"),
    ("purple", "square", "moving up"),
    ("red", "triangle", "moving up"),
    ("green", "cross", "moving down"),
    ("blue", "circle", "moving down"),
    ("yellow", "triangle", "growing"),
    ("purple", "cross", "growing"),
    ("red", "circle", "shrinking"),
    ("green", "square", "shrinking"),
)
SPLITS = ("train", "heldout", "all")
# the motion a clip shows when played backwards
REVERSED_MOTION = {
    "moving left": "moving right",
    "moving right": "moving left",
    "moving up": "moving down",
    "moving down": "moving up",
    "growing": "shrinking",
    "shrinking": "growing",
}


@dataclass(frozen=True)
class VideoAttributes:
    """The captioned attributes of one clip (``size`` is None for growing and shrinking)."""

    size: str | None
    color: str
    shape: str
    motion: str

    def caption(self) -> str:
        if self.size is None:
            return f"a {self.color} {self.shape} {self.motion}"
        return f"a {self.size} {self.color} {self.shape} {self.motion}"

    @property
    def heldout(self) -> bool:
        return (self.color, self.shape, self.motion) in HELDOUT_TRIPLES


def time_reversed(a: VideoAttributes) -> VideoAttributes:
    """What a clip of ``a`` shows played backwards: the same shape with the opposite motion. (A reversed
    clip of ``clip_geometry`` is a clip of ``time_reversed(a)``: start and jitter are drawn symmetrically.)"""
    return replace(a, motion=REVERSED_MOTION[a.motion])


def video_combinations(split: str = "train") -> list[VideoAttributes]:
    """All captioned combinations of a split, in a fixed order."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    out = []
    for color, shape, motion in itertools.product(COLORS, SHAPES, MOTIONS):
        for size in SIZES if motion in DIRECTIONS else (None,):
            a = VideoAttributes(size, color, shape, motion)
            if split == "all" or (split == "heldout") == a.heldout:
                out.append(a)
    return out


def parse_video_caption(text: str) -> VideoAttributes:
    """Inverse of ``VideoAttributes.caption``; ``ValueError`` for text outside the grammar."""
    words = " ".join(text.lower().strip().rstrip(".").split())
    for a in video_combinations("all"):
        if a.caption() == words:
            return a
    raise ValueError(
        f"prompt {text!r} is not in the moving-shapes grammar (e.g. 'a small red circle moving left', "
        "'a blue square growing')"
    )


def prompt_path(text: str, frames: int, seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    """A shape's path for a prompt, drawn as the clips' are (``clip_geometry``: the motion and size words
    set the direction and radius; the start position comes from ``seed``): centres (T, 2) and radii (T,),
    or ``None`` when ``text`` names none or several of ``MOTIONS``. Only the motion and size words are
    read, so "a big ball moving left" gets a path too (a missing size word: small)."""
    words = " " + " ".join(text.lower().replace(".", " ").replace(",", " ").split()) + " "
    found = [m for m in MOTIONS if f" {m} " in words]
    if len(found) != 1:
        return None
    size = None
    if found[0] in DIRECTIONS:
        size = "large" if any(f" {w} " in words for w in ("large", "big")) else "small"
    attributes = VideoAttributes(size, next(iter(COLORS)), SHAPES[0], found[0])
    return clip_geometry(attributes, frames, np.random.default_rng([seed, 3]))


def video_prompt_set(split: str = "train", n: int | None = None, seed: int = 0) -> list[str]:
    """Captions of a split for evaluation: all combinations, or ``n`` of them drawn without replacement."""
    caps = [a.caption() for a in video_combinations(split)]
    if n is None or n >= len(caps):
        return caps
    pick = np.random.default_rng([seed, 2]).choice(len(caps), size=n, replace=False)
    return [caps[i] for i in sorted(pick)]


def clip_geometry(a: VideoAttributes, frames: int, rng: np.random.Generator):
    """Centres (T, 2) and radii (T,) of a clip of ``a`` (fractions of the side), drawn from ``rng``."""
    t = np.linspace(0.0, 1.0, frames)
    margin = 0.03
    if a.motion in DIRECTIONS:
        r = np.full(frames, SIZES[a.size] * rng.uniform(0.9, 1.1))
        travel = TRAVEL * rng.uniform(0.85, 1.15)
        lo, hi = r[0] + margin, 1 - r[0] - margin
        d = np.array(DIRECTIONS[a.motion], dtype=np.float64)
        start = rng.uniform(lo, hi, 2)
        axis = int(d[1] != 0)  # along the motion: room for the whole travel
        start[axis] = rng.uniform(lo, hi - travel) if d[axis] > 0 else rng.uniform(lo + travel, hi)
        centres = start[None] + t[:, None] * travel * d[None]
    else:
        r0, r1 = np.array(GROWTH if a.motion == "growing" else GROWTH[::-1]) * rng.uniform(0.9, 1.1)
        r = r0 + (r1 - r0) * t
        lo, hi = max(r0, r1) + margin, 1 - max(r0, r1) - margin
        centres = np.repeat(rng.uniform(lo, hi, 2)[None], frames, 0)
    return centres, r


class VideoDataset:
    """A fixed, seeded set of ``num_clips`` captioned clips of ``frames`` frames at ``resolution``."""

    def __init__(
        self, num_clips: int, frames: int = 16, resolution: int = 32, seed: int = 0, split: str = "train"
    ):
        if num_clips <= 0 or frames < 2 or resolution < 8:
            raise ValueError("num_clips must be positive, frames at least 2 and resolution at least 8")
        self.frames, self.resolution, self.seed = frames, resolution, seed
        combos = video_combinations(split)
        pick = np.random.default_rng([seed, 0]).integers(0, len(combos), num_clips)
        self.attributes = [combos[i] for i in pick]

    def __len__(self) -> int:
        return len(self.attributes)

    def path(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Centres (T, 2) and radii (T,) of clip ``i``'s shape."""
        return clip_geometry(self.attributes[i], self.frames, np.random.default_rng([self.seed, 1, i]))

    def batch(self, indices) -> dict:
        """Clips ``indices``: ``pixel_values`` (N, T, 3, R, R) in [-1, 1], ``caption``, ``labels`` (shape,
        color, motion indices), ``centres`` (N, T, 2) and ``radii`` (N, T)."""
        idx = list(indices)
        attrs = [self.attributes[i] for i in idx]
        geometry = [self.path(i) for i in idx]
        backgrounds = [np.random.default_rng([self.seed, 2, i]).integers(0, len(BACKGROUNDS)) for i in idx]
        t = self.frames
        images = draw(
            np.repeat([SHAPES.index(a.shape) for a in attrs], t),
            np.repeat([list(COLORS).index(a.color) for a in attrs], t),
            np.repeat(backgrounds, t),
            torch.as_tensor(np.concatenate([c for c, _ in geometry]), dtype=torch.float32),
            torch.as_tensor(np.concatenate([r for _, r in geometry]), dtype=torch.float32),
            self.resolution,
        )
        return {
            "pixel_values": images.view(len(idx), t, 3, self.resolution, self.resolution) * 2 - 1,
            "caption": [a.caption() for a in attrs],
            "labels": {
                "shape": torch.tensor([SHAPES.index(a.shape) for a in attrs]),
                "color": torch.tensor([list(COLORS).index(a.color) for a in attrs]),
                "motion": torch.tensor([MOTIONS.index(a.motion) for a in attrs]),
            },
            "centres": torch.as_tensor(np.stack([c for c, _ in geometry]), dtype=torch.float32),
            "radii": torch.as_tensor(np.stack([r for _, r in geometry]), dtype=torch.float32),
        }
