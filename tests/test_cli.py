"""The ``genkit`` command through a subprocess, on the bundled model."""

import json
import os
import subprocess
import sys

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def genkit(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "genkit", *args], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=300
    )


def test_generate_writes_grid_images_and_metadata(tmp_path):
    out = tmp_path / "gen"
    r = genkit(
        "generate",
        "a large blue square in the center",
        "a small red circle at the top left",
        "--steps",
        "2",
        "--num-images",
        "2",
        "--seed",
        "5",
        "--out",
        str(out),
        "--grid-scale",
        "1",
    )
    assert r.returncode == 0, r.stderr
    assert str(out / "grid.png") in r.stdout
    import imageio.v3 as iio

    grid = iio.imread(out / "grid.png")
    assert grid.shape == (2 * 34 + 2, 2 * 34 + 2, 3)
    recs = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert [r["file_name"] for r in recs] == ["000_00.png", "000_01.png", "001_00.png", "001_01.png"]
    assert [r["seed"] for r in recs] == [5, 6, 5, 6] and recs[2][
        "text"
    ] == "a small red circle at the top left"
    im = iio.imread(out / "001_00.png")
    assert im.shape == (32, 32, 3) and im.std() > 5  # not a blank image
    assert not [p for p in os.listdir(out) if p.startswith(".")]  # no temporary files left


def test_generate_with_the_bundled_fpdm_model(tmp_path):
    out = tmp_path / "fp"
    r = genkit(
        "generate",
        "a large blue square in the center",
        "--model",
        "fpdm",
        "--steps",
        "3",
        "--iterations",
        "4",
        "--allocation",
        "decreasing",
        "--num-images",
        "1",
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    rec = json.loads((out / "metadata.jsonl").read_text())
    assert rec["model"] == "fpdm" and rec["iterations"] == [
        5,
        4,
        3,
    ]  # 12 iterations, most to the noisiest step
    assert rec["block_evaluations"] == 12 + 3 * 2 and rec["gflops"] > 0 and rec["warm_start"] is True
    import imageio.v3 as iio

    assert iio.imread(out / "000_00.png").std() > 5


def test_missing_and_corrupt_model_folders(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    r = genkit("generate", "a red circle", "--model", str(empty), "--out", str(tmp_path / "o1"))
    assert r.returncode == 2 and "no model_index.json" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o1").exists()  # a bad model fails before the output folder is made
    # a copy of the bundled model whose UNet weights are truncated
    import shutil

    from genkit.assets import bundled_models

    bad = tmp_path / "bad"
    shutil.copytree(bundled_models()["text2img-shapes"]["path"], bad)
    w = bad / "unet" / "diffusion_pytorch_model.safetensors"
    w.write_bytes(w.read_bytes()[:1000])
    r = genkit("generate", "a red circle", "--model", str(bad), "--out", str(tmp_path / "o2"))
    assert r.returncode == 2 and r.stderr.startswith("genkit generate: error: could not load model from")
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert not list((tmp_path / "o2").iterdir())


def test_unwritable_output_folder(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    r = genkit("generate", "a red circle", "--out", str(f / "sub"))
    assert r.returncode == 2 and "cannot write to output folder" in r.stderr
    r = genkit("generate", "a red circle", "--out", str(f))
    assert r.returncode == 2 and "is not a folder" in r.stderr


def test_models_env_and_help():
    r = genkit("models")
    assert r.returncode == 0 and "text2img-shapes (default)" in r.stdout and "make weights" in r.stdout
    r = genkit("env")
    assert r.returncode == 0 and "diffusers" in r.stdout and "cuda" in r.stdout
    r = genkit("train", "text2img", "--help")
    assert r.returncode == 0 and "--max-train-steps" in r.stdout


def test_eval_on_a_generated_folder(tmp_path):
    out = tmp_path / "gen"
    assert (
        genkit(
            "generate",
            "a large purple cross at the top right",
            "--steps",
            "10",
            "--num-images",
            "4",
            "--out",
            str(out),
        ).returncode
        == 0
    )
    r = genkit("eval", "--images", str(out), "--num-real", "300", "--out", str(tmp_path / "e.json"))
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "e.json").read_text())["results"]["train"]
    assert res["num_images"] == 4 and 0 <= res["prompt_accuracy"] <= 1 and res["fd"] > 0
    assert "prompt_accuracy" in r.stdout


def test_train_subcommands(tmp_path):
    r = genkit("train", "tokenizer", "--out", str(tmp_path / "tok"), "--num-captions", "200")
    assert r.returncode == 0 and f"wrote {tmp_path / 'tok'}" in r.stdout
    assert (tmp_path / "tok" / "tokenizer.json").is_file()
    r = genkit("train", "vae", "--max-train-steps", "0", "--out", str(tmp_path / "vae"))
    assert r.returncode == 2 and "must be positive" in r.stderr and "Traceback" not in r.stderr
    r = genkit("train", "text2img", "--vae", str(tmp_path / "missing"), "--out", str(tmp_path / "t"))
    assert r.returncode == 2 and "not found" in r.stderr
