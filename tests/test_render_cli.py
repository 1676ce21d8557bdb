"""``genkit nerf train`` / ``genkit nerf render`` on a tiny 2-view scene, and their bad inputs."""

import json

import imageio.v3 as iio
import torch
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
        "--rays-per-step",
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
    assert main([*args, "--max-train-steps", "4"]) == 0
    report = json.loads((run / "report.json").read_text())
    assert 0 < report["test_psnr"] < 60 and report["curve"]
    assert main([*args, "--max-train-steps", "5"]) == 0
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


def test_empty_cells_penalty_clears_the_density_the_grid_skips(tmp_path):
    from genkit.render.nerf import NerfTrainConfig, load_field, train_nerf

    scene = tiny_scene(tmp_path / "scene")
    density = {}
    for weight in (0.0, 1e-1):
        cfg = NerfTrainConfig(
            data=str(scene),
            out=str(tmp_path / f"run{weight}"),
            max_train_steps=12,
            rays_per_step=64,
            grid_resolution=8,
            grid_warmup_steps=2,
            log2_table_size=10,
            max_resolution=64,
            eval_views=0,
            aabb_size=1.0,
            empty_weight=weight,
        )
        train_nerf(cfg)
        field_, est, _ = load_field(cfg.out)
        pts = torch.rand(4096, 3, generator=torch.Generator().manual_seed(1)) * 2 - 1
        with torch.no_grad():
            density[weight] = field_.density(pts[~est.occupied(pts)]).mean().item()
    # same seed, same rays: the penalty alone lowers the density where the sampler never looks
    assert density[1e-1] < 0.75 * density[0.0]
