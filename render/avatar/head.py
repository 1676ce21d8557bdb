"""A procedural parametric head and its ground-truth "monocular video" (the licensed face models cannot be
downloaded here, so genkit builds its own).

The head is an ellipsoid-shaped icosphere (``trimesh``, 2562 vertices) with a nose, a chin and brow ridges;
``EXPRESSIONS`` names its 12 expression parameters: a jaw (a rotation of the lower face) and 11 smooth
blendshapes (mouth corners, brows, eyelids, cheeks, lips). A head pose (yaw, pitch, roll) rotates it. The
texture is a function of the template position (skin with pores, eyes, brows, lips, hair), shaded with a
light fixed in the head frame (``light="head"``: expressions change the shading) or in the world
(``light="world"``: the head pose changes it too). Frames are rasterized by ``genkit.render.raster``.

``make_head_dataset`` writes the open format the avatar trains on, which another face model (FLAME
tracking output) can fill just as well::

    DIR/meta.json                    image size, focal, expression names, the splits
    DIR/faces.npy                    (F, 3) int triangles of the tracked mesh
    DIR/template.npy                 (V, 3) the neutral mesh (only its vertex order and UVs matter)
    DIR/{split}.npz                  expressions (N, E), pose (N, 3), vertices (N, V, 3) in world space,
                                     c2w (N, 4, 4) cameras, images (N, H, W, 3) uint8, masks (N, H, W) bool
    DIR/{split}/0000.png ...         the frames as PNG (for looking at; training reads the npz)

Splits: ``train`` (frontal camera, expressions and poses along smooth random trajectories), ``test_expr``
(held-out expression combinations in the training range), ``test_extreme`` (expressions up to 1.3x the
training range), ``test_view`` (training-range expressions from cameras 30-40 degrees to the side).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from genkit.render.geometry import euler, look_at, unit, vertex_normals
from genkit.render.raster import rasterize
from genkit.utils import GenkitError, atomic_dir, reading

EXPRESSIONS = [
    "jaw_open",
    "smile_left",
    "smile_right",
    "frown",
    "brow_raise_left",
    "brow_raise_right",
    "brow_furrow",
    "blink_left",
    "blink_right",
    "cheek_puff",
    "lip_pucker",
    "mouth_stretch",
]
HEAD_SCALE = (0.78, 1.0, 0.88)  # ellipsoid half-axes (x right, y up, z towards the camera)
EYE = (0.33, 0.2)  # |x| and y of the eye centres on the template direction
MOUTH_Y = -0.42
LIGHT = np.array([0.4, 0.5, 0.77])


def _bump(p: np.ndarray, centre, radius: float) -> np.ndarray:
    """Smooth bump in [0, 1] around ``centre`` on the template (unit-sphere) directions ``p`` (V, 3)."""
    d2 = ((p - unit(np.asarray(centre, dtype=np.float64))) ** 2).sum(-1)
    return np.exp(-d2 / (2 * radius**2))


@dataclass
class ProceduralHead:
    """Template, blendshapes and texture of the procedural head; ``vertices(expr, pose)`` poses it."""

    directions: np.ndarray  # (V, 3) unit-sphere template directions (texture and UV coordinates)
    template: np.ndarray  # (V, 3) neutral head
    faces: np.ndarray  # (F, 3)
    shapes: np.ndarray  # (E - 1, V, 3) blendshape displacements (all but the jaw)
    jaw_weight: np.ndarray  # (V,) how much each vertex follows the jaw

    @classmethod
    def build(cls, subdivisions: int = 4) -> ProceduralHead:
        import trimesh

        sphere = trimesh.creation.icosphere(subdivisions=subdivisions)
        p = np.asarray(sphere.vertices, dtype=np.float64)
        s = np.array(HEAD_SCALE)
        head = p * s
        # nose, chin, brow ridges, eye sockets, flattened back of the neck
        head += _bump(p, (0, -0.05, 1), 0.12)[:, None] * np.array([0, -0.02, 0.22])
        head += _bump(p, (0, -0.78, 0.62), 0.16)[:, None] * np.array([0, -0.04, 0.06])
        for sx in (-1, 1):
            head += _bump(p, (sx * 0.33, 0.36, 0.9), 0.12)[:, None] * np.array([0, 0, 0.05])
            head -= _bump(p, (sx * EYE[0], EYE[1], 0.92), 0.09)[:, None] * np.array([0, 0, 0.05])
        shapes = []

        def shape(centre, radius, disp):
            shapes.append(_bump(p, centre, radius)[:, None] * np.asarray(disp))

        shape((0.26, -0.40, 0.88), 0.1, (0.05, 0.09, -0.03))  # smile_left (image right = +x)
        shape((-0.26, -0.40, 0.88), 0.1, (-0.05, 0.09, -0.03))  # smile_right
        shapes.append(
            shapes[0] * np.array([0.2, -1.0, 0.0]) + shapes[1] * np.array([0.2, -1.0, 0.0])
        )  # frown
        shape((0.33, 0.42, 0.85), 0.12, (0, 0.1, 0.02))  # brow_raise_left
        shape((-0.33, 0.42, 0.85), 0.12, (0, 0.1, 0.02))  # brow_raise_right
        furrow = _bump(p, (0.16, 0.36, 0.95), 0.08)[:, None] * np.array([-0.05, -0.06, 0.02])
        furrow += _bump(p, (-0.16, 0.36, 0.95), 0.08)[:, None] * np.array([0.05, -0.06, 0.02])
        shapes.append(furrow)  # brow_furrow
        for sx in (1, -1):  # blink: the upper lid slides down over the eye
            lid = _bump(p, (sx * EYE[0], EYE[1] + 0.1, 0.92), 0.07)
            shapes.append(lid[:, None] * np.array([0, -0.13, 0.03]))
        puff = sum(
            _bump(p, (sx * 0.45, -0.25, 0.8), 0.15)[:, None] * np.array([sx * 0.08, 0, 0.06])
            for sx in (-1, 1)
        )
        shapes.append(puff)  # cheek_puff
        mouth = _bump(p, (0, MOUTH_Y, 0.9), 0.12)
        shapes.append(mouth[:, None] * np.array([0, 0, 0.1]) - mouth[:, None] * p * np.array([0.25, 0, 0]))
        stretch = _bump(p, (0, MOUTH_Y, 0.9), 0.16)[:, None] * p * np.array([0.3, 0, 0])
        shapes.append(stretch)  # mouth_stretch
        # the jaw: the lower front of the face, fading out towards the cheeks and the back
        jaw = 1 / (1 + np.exp(-(-0.35 - p[:, 1]) / 0.06)) * 1 / (1 + np.exp(-(p[:, 2] - 0.1) / 0.1))
        return cls(
            p.astype(np.float32),
            head.astype(np.float32),
            np.asarray(sphere.faces),
            np.stack(shapes).astype(np.float32),
            jaw.astype(np.float32),
        )

    @property
    def num_expressions(self) -> int:
        return 1 + len(self.shapes)

    def vertices(self, expr: np.ndarray, pose: np.ndarray | None = None) -> np.ndarray:
        """(V, 3) vertices for ``expr`` (E,) and ``pose`` (yaw, pitch, roll) in radians, in world space."""
        expr = np.asarray(expr, dtype=np.float32)
        if expr.shape != (self.num_expressions,):
            raise GenkitError(f"expression must have {self.num_expressions} values, got shape {expr.shape}")
        v = self.template + np.einsum("e,evc->vc", expr[1:], self.shapes)
        angle = 0.35 * expr[0]  # jaw: rotation about the x axis through the jaw hinge
        hinge = np.array([0, -0.1, -0.25], dtype=np.float32)
        c, s = math.cos(angle), math.sin(angle)
        rot = np.array([[1, 0, 0], [0, c, s], [0, -s, c]], dtype=np.float32)
        w = self.jaw_weight[:, None]
        v = v * (1 - w) + ((v - hinge) @ rot.T + hinge) * w
        if pose is not None:
            v = v @ euler(pose).T
        return v.astype(np.float32)

    def shade(self, directions: np.ndarray, normals: np.ndarray) -> np.ndarray:
        """RGB in [0, 1] of template ``directions`` (N, 3) with head-frame ``normals`` (N, 3)."""
        return np.clip(albedo(directions) * (0.3 + 0.7 * np.clip(normals @ unit(LIGHT), 0, 1))[:, None], 0, 1)


def albedo(p: np.ndarray) -> np.ndarray:
    """The procedural texture on template directions ``p`` (N, 3): skin with pores and blush, eyes with
    iris and pupil, brows, lips, hair with strands."""
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    pores = 0.04 * np.sin(61 * x + 13 * y) * np.sin(57 * y - 17 * z) + 0.03 * np.sin(23 * x * z + 31 * y)
    skin = np.stack([0.86 + pores, 0.66 + pores, 0.55 + pores], -1)
    blush = sum(_bump(p, (sx * 0.5, -0.15, 0.8), 0.12) for sx in (-1, 1))[:, None]
    col = skin * (1 - 0.35 * blush) + np.array([0.9, 0.45, 0.45]) * 0.35 * blush
    lips = np.exp(-(((y - MOUTH_Y) / 0.045) ** 2) - (x / 0.2) ** 6)[:, None] * (z > 0.5)[:, None]
    col = col * (1 - lips) + np.array([0.72, 0.2, 0.25]) * lips
    for sx in (-1, 1):
        ex, ey = sx * EYE[0], EYE[1]
        r = np.where(z > 0.5, np.sqrt((x - ex) ** 2 + ((y - ey) * 1.6) ** 2), np.inf)
        brow = np.exp(
            -(((y - ey - 0.17 - 0.04 * np.cos((x - ex) * 8)) / 0.025) ** 2) - ((x - ex) / 0.13) ** 4
        )
        brow = (brow * (z > 0.5))[:, None]
        col = col * (1 - 0.8 * brow) + np.array([0.18, 0.11, 0.07]) * 0.8 * brow
        sclera = (r < 0.085)[:, None]
        iris = (np.sqrt((x - ex) ** 2 + (y - ey) ** 2) < 0.045)[:, None] * (z > 0.5)[:, None]
        pupil = (np.sqrt((x - ex) ** 2 + (y - ey) ** 2) < 0.02)[:, None] * (z > 0.5)[:, None]
        col = np.where(sclera, np.array([0.95, 0.95, 0.93]), col)
        col = np.where(
            iris, np.array([0.25, 0.45, 0.6]) + 0.1 * np.sin(200 * np.arctan2(y - ey, x - ex))[:, None], col
        )
        col = np.where(pupil, np.array([0.03, 0.03, 0.03]), col)
    azimuth = np.arctan2(x, z)
    hairline = (y > 0.62 - 0.25 * np.clip(-z, 0, 1) - 0.05 * np.cos(3 * azimuth)) | ((z < -0.35) & (y > -0.5))
    strands = 0.06 * np.sin(90 * azimuth + 8 * y)[:, None]
    col = np.where(hairline[:, None], np.array([0.32, 0.2, 0.1]) + strands, col)
    return np.clip(col, 0, 1).astype(np.float32)


LIGHTS = ("head", "world")


def render_ground_truth(head: ProceduralHead, expr, pose, c2w, focal: float, size: int, light: str = "head"):
    """The ground-truth frame: (image (H, W, 3) float in [0, 1] on white, mask (H, W) bool, vertices).
    ``light``: the frame the light is fixed in, "head" (it turns with the head) or "world"."""
    verts = head.vertices(expr, pose)
    faces = torch.from_numpy(head.faces)
    face, bary, _ = rasterize(torch.from_numpy(verts), faces, torch.as_tensor(c2w), focal, size)
    mask = face >= 0
    f = faces[face[mask]]
    b = bary[mask]
    dirs = (torch.from_numpy(head.directions)[f] * b[..., None]).sum(1).numpy()
    shaded = torch.from_numpy(head.vertices(expr) if light == "head" else verts)
    normals = vertex_normals(shaded, faces)[f]
    n = torch.nn.functional.normalize((normals * b[..., None]).sum(1), dim=-1).numpy()
    img = np.ones((size, size, 3), dtype=np.float32)
    img[mask.numpy()] = head.shade(unit(dirs), n)
    return img, mask.numpy(), verts


def trajectories(n: int, dims: int, rng: np.random.Generator, smooth: float = 12.0) -> np.ndarray:
    """Smooth random curves in [0, 1] (n, dims): sums of a few sinusoids, squashed, often near zero."""
    t = np.arange(n)[:, None]
    out = np.zeros((n, dims))
    for _ in range(3):
        freq = rng.uniform(0.3, 1.0, dims) / smooth
        out += np.sin(t * freq + rng.uniform(0, 2 * np.pi, dims)) * rng.uniform(0.5, 1.0, dims)
    return np.clip(out / 1.5 + rng.uniform(-0.3, 0.1, dims), 0, 1).astype(np.float32)


SPLITS = {  # name: (frames, expression scale, pose scale, camera yaw in degrees (None: frontal), seed)
    "train": (240, 1.0, 1.0, None, 0),
    "test_expr": (24, 1.0, 0.5, None, 1),
    "test_extreme": (12, 1.3, 0.5, None, 2),
    "test_view": (12, 1.0, 0.5, (30, 40), 3),
}


@dataclass
class HeadDataConfig:
    out: str = field(default="data/head", metadata={"help": "dataset folder"})
    size: int = field(default=128, metadata={"help": "frame width and height in pixels"})
    frames: int | None = field(
        default=None, metadata={"help": "training frames (default 240; the test splits scale with it)"}
    )
    seed: int = field(default=0, metadata={"help": "seed of the expression and pose trajectories"})
    light: str = field(
        default="head",
        metadata={
            "help": "the frame the light is fixed in: 'head' (turns with the head) or 'world' (the pose "
            "changes the shading too)",
            "choices": LIGHTS,
        },
    )

    def __post_init__(self):
        if self.frames is not None and self.frames < 2:
            raise GenkitError("--frames must be at least 2")


def make_head_dataset(
    out: str | Path, size: int = 128, frames: int | None = None, seed: int = 0, light: str = "head"
) -> Path:
    """Render every split of the procedural head's monocular video into ``out`` (atomically), lit by a
    light fixed in the ``light`` frame (see ``render_ground_truth``)."""
    import imageio.v3 as iio
    from tqdm.auto import tqdm

    if size < 16:
        raise GenkitError("--size must be at least 16")
    if light not in LIGHTS:
        raise GenkitError(f"--light must be one of {', '.join(LIGHTS)}, got {light!r}")
    head = ProceduralHead.build()
    focal = 1.35 * size
    out = Path(out)
    with atomic_dir(out) as tmp:
        np.save(tmp / "faces.npy", head.faces.astype(np.int64))
        np.save(tmp / "template.npy", head.template)
        meta = {"size": size, "focal": focal, "expressions": EXPRESSIONS, "light": light, "splits": {}}
        for split, (n, escale, pscale, yaw, s) in SPLITS.items():
            n = n if frames is None else max(2, frames if split == "train" else frames // 4)
            rng = np.random.default_rng(1000 * seed + s)
            expr = trajectories(n, head.num_expressions, rng) * escale
            if split != "train":  # held-out combinations: shuffle coefficients between frames
                expr = np.stack([expr[rng.permutation(n), i] for i in range(expr.shape[1])], 1)
            pose = (trajectories(n, 3, rng) * 2 - 1) * np.array([0.35, 0.15, 0.1]) * pscale
            records = {
                "expressions": expr,
                "pose": pose.astype(np.float32),
                "vertices": [],
                "c2w": [],
                "images": [],
                "masks": [],
            }
            (tmp / split).mkdir()
            for i in tqdm(range(n), desc=f"render {split}", unit="frame"):
                a = 0.0 if yaw is None else math.radians(yaw[i % 2]) * (1 if i % 4 < 2 else -1)
                c2w = look_at((3.2 * math.sin(a), 0.0, 3.2 * math.cos(a)))
                img, mask, verts = render_ground_truth(head, expr[i], pose[i], c2w, focal, size, light)
                img8 = (img * 255).round().astype(np.uint8)
                iio.imwrite(tmp / split / f"{i:04d}.png", img8)
                for k, v in (("vertices", verts), ("c2w", c2w), ("images", img8), ("masks", mask)):
                    records[k].append(v)
            np.savez_compressed(
                tmp / f"{split}.npz",
                **{k: np.stack(v) if isinstance(v, list) else v for k, v in records.items()},
            )
            meta["splits"][split] = n
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    return out


@dataclass
class HeadData:
    """One split of a head dataset as tensors."""

    expressions: torch.Tensor  # (N, E)
    pose: torch.Tensor  # (N, 3)
    vertices: torch.Tensor  # (N, V, 3)
    c2w: torch.Tensor  # (N, 4, 4)
    images: torch.Tensor  # (N, H, W, 3) float in [0, 1]
    masks: torch.Tensor  # (N, H, W) bool
    faces: torch.Tensor  # (F, 3)
    template: torch.Tensor  # (V, 3)
    focal: float
    size: int
    light: str | None = None  # meta.json's "light" (genkit's procedural head): the frame of its light

    def __len__(self) -> int:
        return len(self.expressions)

    def to(self, device) -> HeadData:
        """The split with its tensors on ``device``."""
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        return HeadData(**{k: v.to(device) if torch.is_tensor(v) else v for k, v in moved.items()})


def load_head_split(root: str | Path, split: str = "train") -> HeadData:
    """Read ``root/{split}.npz`` with a clear error for a missing or inconsistent dataset."""
    root = Path(root)
    if not (root / "meta.json").is_file():
        raise GenkitError(f"{root} is not a head dataset (no meta.json; make one with genkit avatar data)")
    path = root / f"{split}.npz"
    if not path.is_file():
        raise GenkitError(f"{path} is missing: the dataset has no {split!r} frames")
    with reading(f"cannot read the head dataset {path}"):  # broken npz/npy, meta.json
        return _head_split(root, path)


def _head_split(root: Path, path: Path) -> HeadData:
    meta = json.loads((root / "meta.json").read_text())
    z = np.load(path, allow_pickle=False)
    missing = {"expressions", "pose", "vertices", "c2w", "images", "masks"} - set(z.files)
    if missing:
        raise GenkitError(f"{path} lacks {sorted(missing)}")
    n = len(z["expressions"])
    faces = np.load(root / "faces.npy", allow_pickle=False)
    template = np.load(root / "template.npy", allow_pickle=False)
    if any(len(z[k]) != n for k in ("pose", "vertices", "c2w", "images", "masks")):
        raise GenkitError(f"{path}: the arrays do not all have {n} frames")
    if z["vertices"].shape[1] != len(template) or faces.max() >= len(template):
        raise GenkitError(f"{path}: vertices do not match the template's {len(template)} vertices")
    size = int(meta["size"])
    if z["images"].shape[1:3] != (size, size):
        raise GenkitError(f"{path}: images are {z['images'].shape[1:3]}, meta.json says {size}x{size}")
    return HeadData(
        torch.from_numpy(z["expressions"]).float(),
        torch.from_numpy(z["pose"]).float(),
        torch.from_numpy(z["vertices"]).float(),
        torch.from_numpy(z["c2w"]).float(),
        torch.from_numpy(z["images"]).float() / 255,
        torch.from_numpy(z["masks"]).bool(),
        torch.from_numpy(faces).long(),
        torch.from_numpy(template).float(),
        float(meta["focal"]),
        size,
        meta.get("light"),
    )
