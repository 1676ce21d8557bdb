"""``genkit nerf train`` / ``genkit nerf render`` on a tiny 2-view scene, and their bad inputs."""

import json

import imageio.v3 as iio
from test_render_datasets import write_scene

from genkit.cli import main


def tiny_scene(root):
    write_scene(root)
    (root / "transforms_test.json").write_text((root / "transforms_train.json").read_text())
    return root


def test_train_resume_and_render(tmp_path, capsys):
    scene = tiny_scene(tmp_path / "scene")
    run = tmp_path / "run"
    args = [
        "nerf",
        "train",
        "--data",
        str(scene),
        "--out",
        str(run),
        "--rays-per-batch",
        "64",
        "--grid-resolution",
        "8",
        "--log2-table-size",
        "10",
        "--max-resolution",
        "64",
        "--checkpointing-steps",
        "2",
        "--eval-views",
        "1",
        "--aabb-size",
        "1.0",
    ]
    assert main([*args, "--max-steps", "4"]) == 0
    report = json.loads((run / "report.json").read_text())
    assert 0 < report["test_psnr"] < 60 and report["curve"]
    assert main([*args, "--max-steps", "5"]) == 0
    assert "resumed from" in capsys.readouterr().out
    out = tmp_path / "turntable.gif"
    assert (
        main(["nerf", "render", "--checkpoint", str(run), "--out", str(out), "--frames", "2", "--size", "8"])
        == 0
    )
    assert iio.imread(out).shape[:3] == (2, 8, 8)
    assert iio.imread(out.with_suffix(".png")).shape[:2] == (8, 16)
    # a barely trained field has no surface at the default density level: a clear error, no file
    capsys.readouterr()
    mesh = tmp_path / "m.ply"
    assert main(["nerf", "mesh", "--checkpoint", str(run), "--out", str(mesh), "--resolution", "8"]) == 2
    assert "no surface" in capsys.readouterr().err and not mesh.exists()


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    rc = main(["nerf", "train", "--data", str(tmp_path), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 2 and "no transforms_train.json" in err and len(err.strip().splitlines()) == 1
    rc = main(["nerf", "render", "--checkpoint", str(tmp_path / "nothing"), "--out", str(tmp_path / "a.mp4")])
    assert rc == 2 and "not found" in capsys.readouterr().err
    rc = main(["nerf", "render", "--checkpoint", str(tmp_path), "--out", str(tmp_path / "a.txt")])
    assert rc == 2 and ".mp4 or .gif" in capsys.readouterr().err
