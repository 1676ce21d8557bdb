"""Readers of the de-facto NeRF data formats, and camera rays.

- Blender / NeRF-synthetic: ``transforms_{train,val,test}.json`` with ``camera_angle_x`` and frames of
  ``file_path`` (without extension, relative to the scene) and a 4x4 camera-to-world ``transform_matrix``
  (OpenGL convention: the camera looks down -z, y up).
- nerfstudio: one ``transforms.json`` with intrinsics (``fl_x``, ``fl_y``, ``cx``, ``cy``, ``w``, ``h``) at
  the top level or per frame, and ``file_path`` with its extension; all frames form the ``train`` split.

Images are RGBA composited onto ``background`` (white, as for NeRF-synthetic) or RGB. Every user mistake
(no transforms file, a missing image, images of different sizes, non-finite poses) raises GenkitError.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genkit.utils import GenkitError, reading

__all__ = ["SceneData", "load_scene"]


@dataclass
class SceneData:
    images: torch.Tensor  # (N, H, W, 3) float in [0, 1]
    alphas: torch.Tensor | None  # (N, H, W, 1) or None for RGB images
    c2w: torch.Tensor  # (N, 4, 4) camera-to-world, OpenGL convention
    focal: float  # pixels
    width: int
    height: int

    def __len__(self) -> int:
        return self.images.shape[0]


def _read_image(path: Path) -> np.ndarray:
    import imageio.v3 as iio

    if not path.is_file():
        raise GenkitError(f"image {str(path)!r} listed in the transforms file is missing")
    return np.asarray(iio.imread(path))


def load_scene(root: str | Path, split: str = "train", background=(1.0, 1.0, 1.0)) -> SceneData:
    """The ``split`` of a Blender (``transforms_<split>.json``) or nerfstudio (``transforms.json``) scene."""
    root = Path(root)
    blender = root / f"transforms_{split}.json"
    studio = root / "transforms.json"
    file = blender if blender.is_file() else studio if studio.is_file() else None
    if file is None:
        raise GenkitError(f"no transforms_{split}.json or transforms.json in {str(root)!r}")
    with reading(f"{str(file)!r} is not a usable transforms file"):  # JSON, fields, image files
        return _scene(json.loads(file.read_text()), root, file == studio, background)


def _scene(meta: dict, root: Path, nerfstudio: bool, background) -> SceneData:
    frames = meta.get("frames") or []
    if not frames:
        raise GenkitError(f"the transforms file in {str(root)!r} lists no frames")
    images, poses = [], []
    for f in frames:
        rel = f["file_path"]
        path = root / rel if nerfstudio or Path(rel).suffix else root / f"{rel}.png"
        img = _read_image(path).astype(np.float32) / 255.0
        if img.ndim != 3 or img.shape[2] not in (3, 4):
            raise GenkitError(f"image {str(path)!r} is not RGB or RGBA")
        if images and img.shape[:2] != images[0].shape[:2]:
            raise GenkitError(
                f"image {str(path)!r} is {img.shape[1]}x{img.shape[0]}, others are "
                f"{images[0].shape[1]}x{images[0].shape[0]}: all images of a scene must have one size"
            )
        images.append(img)
        pose = np.asarray(f["transform_matrix"], dtype=np.float64)
        if pose.shape != (4, 4) or not np.isfinite(pose).all():
            raise GenkitError(f"frame {rel!r} has a transform_matrix that is not a finite 4x4 matrix")
        poses.append(pose)
    h, w = images[0].shape[:2]
    if nerfstudio:
        focal = float(meta.get("fl_x", frames[0].get("fl_x", 0)))
        if "w" in meta and (meta["w"], meta["h"]) != (w, h):
            raise GenkitError(f"transforms.json says {meta['w']}x{meta['h']} but the images are {w}x{h}")
    else:
        focal = 0.5 * w / math.tan(0.5 * float(meta["camera_angle_x"]))
    if not focal > 0:
        raise GenkitError("the transforms file has no usable focal length (camera_angle_x or fl_x)")
    arr = torch.from_numpy(np.stack(images))
    alpha = None
    if arr.shape[-1] == 4:
        alpha = arr[..., 3:]
        arr = arr[..., :3] * alpha + torch.tensor(background, dtype=arr.dtype) * (1 - alpha)
    return SceneData(arr, alpha, torch.from_numpy(np.stack(poses)).float(), focal, w, h)
