"""Scene readers (render/datasets.py): the real lego scene, a written round trip, bad inputs."""

import json
import math
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from genkit.render.geometry import camera_rays
from genkit.render.nerf.datasets import load_scene
from genkit.utils import GenkitError

LEGO = Path(__file__).resolve().parents[2] / "shared" / "data" / "lego_100"


def write_scene(root: Path, n=2, size=(8, 6), nan=False, mismatched=False):
    root.mkdir(parents=True, exist_ok=True)
    (root / "train").mkdir(exist_ok=True)
    frames = []
    rng = np.random.default_rng(0)
    for i in range(n):
        w, h = (size[0] + 2, size[1]) if mismatched and i == 1 else size
        iio.imwrite(root / "train" / f"r_{i}.png", rng.integers(0, 256, (h, w, 4), dtype=np.uint8))
        pose = np.eye(4)
        pose[:3, 3] = [0, 0, 4 + i]
        if nan and i == 1:
            pose[0, 0] = float("nan")
        frames.append({"file_path": f"./train/r_{i}", "transform_matrix": pose.tolist()})
    (root / "transforms_train.json").write_text(json.dumps({"camera_angle_x": 0.69, "frames": frames}))
    return root


def test_round_trip_of_a_written_scene(tmp_path):
    root = write_scene(tmp_path / "s")
    scene = load_scene(root, "train")
    raw = iio.imread(root / "train" / "r_1.png").astype(np.float32) / 255
    expected = raw[..., :3] * raw[..., 3:] + (1 - raw[..., 3:])
    np.testing.assert_allclose(scene.images[1].numpy(), expected, atol=1e-6)
    assert (scene.width, scene.height, len(scene)) == (8, 6, 2)
    assert math.isclose(scene.focal, 0.5 * 8 / math.tan(0.345), rel_tol=1e-6)
    torch.testing.assert_close(scene.c2w[1, :3, 3], torch.tensor([0.0, 0.0, 5.0]))


def test_camera_rays_look_down_minus_z():
    o, d = camera_rays(torch.eye(4), focal=10.0, width=4, height=4)
    assert o.shape == d.shape == (16, 3)
    torch.testing.assert_close(d.norm(dim=-1), torch.ones(16))
    centre = d.mean(0)
    assert centre[2] < -0.98 and abs(centre[0]) < 1e-6 and abs(centre[1]) < 1e-6
    assert d[0, 0] < 0 and d[0, 1] > 0  # top-left pixel: left and up


@pytest.mark.skipif(not LEGO.is_dir(), reason="the shared lego_100 scene is not present")
def test_reads_the_lego_scene():
    scene = load_scene(LEGO, "test")
    assert len(scene) == 12 and scene.images.shape == (12, 100, 100, 3) and scene.alphas is not None
    assert 0 <= scene.images.min() and scene.images.max() <= 1
    assert 100 < scene.focal < 200  # 0.5 * 100 / tan(0.5 * 0.69) ~ 139


@pytest.mark.parametrize(
    "kw, message",
    [({"nan": True}, "not a finite 4x4"), ({"mismatched": True}, "must have one size")],
)
def test_bad_scenes_are_rejected(tmp_path, kw, message):
    with pytest.raises(GenkitError, match=message):
        load_scene(write_scene(tmp_path / "bad", **kw), "train")


def test_missing_transforms_and_images(tmp_path):
    with pytest.raises(GenkitError, match="no transforms_train.json"):
        load_scene(tmp_path, "train")
    root = write_scene(tmp_path / "s")
    (root / "train" / "r_0.png").unlink()
    with pytest.raises(GenkitError, match="missing"):
        load_scene(root, "train")
    for text in ("{not json", '{"frames": [{"transform_matrix": []}]}'):  # bad JSON; a frame without file
        (root / "transforms_train.json").write_text(text)
        with pytest.raises(GenkitError, match="is not a usable transforms file"):
            load_scene(root, "train")
