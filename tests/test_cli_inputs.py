"""Bad input a user can type, for every command: one line on stderr, exit status 2, no traceback, and no
output left behind. ``main`` runs in-process (what the console script runs); ``tests/test_cli.py`` checks
the console script itself through a subprocess."""

import json

import numpy as np
import pytest

from genkit.assets import bundled_models
from genkit.cli import main
from genkit.loading import PIPELINE_KINDS


def run(args, capsys):
    """(exit status, stdout, stderr lines) of ``genkit ARGS``; an exception that escapes ``main`` fails."""
    capsys.readouterr()
    try:
        rc = main(args)
    except SystemExit as e:
        rc = e.code
    out, err = capsys.readouterr()
    return (
        rc,
        out,
        [line for line in err.splitlines() if line.strip() and not line.startswith("[transformers]")],
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    t = tmp_path_factory.mktemp("inputs")
    (t / "file").write_text("x")
    (t / "bad.json").write_text("{not json")
    (t / "empty.txt").write_text("")
    np.save(t / "obj.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
    (t / "pipe").mkdir()
    (t / "pipe" / "model_index.json").write_text("{broken")
    return t


CASES = [
    (["generate"], "required: PROMPT"),
    (["generate", ""], "prompt must not be empty"),
    (["generate", "x", "--steps", "0"], "--steps must be a positive integer"),
    (["generate", "x", "--steps", "-3"], "--steps must be a positive integer"),
    (["generate", "x", "--steps", "two"], "invalid int value"),
    (["generate", "x", "--num-images", "0"], "--num-images must be a positive integer"),
    (["generate", "x", "--guidance", "nan"], "invalid float value: 'nan'"),
    (["generate", "x", "--guidance", "inf"], "invalid float value: 'inf'"),
    (["generate", "x", "--grid-scale", "0"], "--grid-scale must be a positive integer"),
    (["generate", "x", "--model", "fpdm", "--iterations", "0"], "--iterations must be a positive"),
    (["generate", "x", "--model", "text2img-shapes", "--iterations", "3"], "apply to FPDM models"),
    (["generate", "x", "--allocation", "zigzag"], "invalid choice"),
    (["generate", "x", "--scheduler", "plms"], "invalid choice"),
    (["generate", "x", "--model", "no-such-model"], "unknown model 'no-such-model'"),
    (["generate", "x", "--model", "video-shapes", "--out", "{t}/d1"], "is a video model; use 'genkit video'"),
    (["video"], "required: PROMPT"),
    (["video", " "], "prompt must not be empty"),
    (["video", "x", "--frames", "1"], "--frames must be in [2, 32]"),
    (["video", "x", "--fps", "0"], "--fps must be a positive integer"),
    (["video", "x", "--num-videos", "-1"], "--num-videos must be a positive integer"),
    (["video", "x", "--guidance", "nan"], "invalid float value: 'nan'"),
    (["video", "x", "--model", "text2img-shapes", "--out", "{t}/d2"], "is an image model"),
    (["video", "x", "--model", "{t}/file"], "is a file, not a diffusers pipeline folder"),
    (["video", "x", "--model", "video-classifier"], "is a bundled classifier model"),
    (["video", "x", "--noise-warp", "sideways"], "invalid choice: 'sideways'"),
    (
        ["video", "x", "--noise-shared", "0", "--noise-warp", "on", "--out", "{t}/d4"],
        "it needs --noise-shared > 0",
    ),
    (["train", "video", "--frames", "40"], "--frames must be in [2, 32]"),
    (["train", "video", "--batch-size", "0"], "must be positive"),
    (["train", "video", "--noise-warp", "--noise-shared", "0"], "it needs --noise-shared > 0"),
    (["train", "video", "--noise-warp", "--reversed-pairs"], "do not go together"),
    (["train", "video", "--temporal-loss", "-1"], "--temporal-loss must be >= 0"),
    (["train", "video", "--temporal-loss-background"], "--temporal-loss-background needs a --temporal-loss"),
    (
        ["train", "video", "--temporal-loss", "1", "--temporal-loss-background", "--reversed-pairs"],
        "--temporal-loss-background does not work with --reversed-pairs",
    ),
    (["train", "video", "--base", "student-shapes", "--out", "{t}/d3"], "--base must be a Stable Diffusion"),
    (["train", "video-classifier", "--frames", "6"], "--frames must be a positive multiple of 4"),
    (
        ["generate", "x", "--model", "shapes-oracle"],
        "is a bundled classifier model, not a diffusers pipeline",
    ),
    (["generate", "x", "--model", "avatar-head"], "is a bundled avatar model"),
    (["generate", "x", "--model", "{t}/file"], "is a file, not a diffusers pipeline folder"),
    (["generate", "x", "--model", "{t}/pipe"], "could not load model"),
    (["generate", "x", "--model", "student", "--steps", "5"], "is a 1-step student: --steps must be 1..1"),
    (["generate", "x", "--device", "gpu0"], "--device 'gpu0' is not a device"),
    (["generate", "x", "--device", "cuda:7"], "torch sees no CUDA GPU here"),
    (["eval"], "exactly one of --model or --images"),
    (["eval", "--model", "student", "--images", "{t}"], "exactly one of --model or --images"),
    (["eval", "--images", "{t}/nope"], "has no metadata.jsonl"),
    (["eval", "--model", "shapes-oracle"], "is a bundled classifier model"),
    (["eval", "--model", "student", "--num-real", "1"], "--num-real at least 2"),
    (["eval", "--model", "student", "--num-prompts", "0"], "--num-prompts must be positive"),
    (["eval", "--model", "student", "--steps", "3"], "--steps must be 1..1"),
    (["eval", "--model", "student", "--oracle", "{t}/file"], "could not load the oracle classifier"),
    (["eval", "--model", "student", "--out", "{t}"], "is a folder; give a file name"),
    (["distill", "--teacher", "nope", "--out", "{t}/d1"], "unknown model 'nope'"),
    (["distill", "--teacher", "student", "--out", "{t}/d2"], "already a distilled student"),
    (["distill", "--teacher", "{t}/pipe", "--out", "{t}/d3"], "cannot read the teacher folder"),
    (["distill", "--prompts", "{t}/empty.txt", "--out", "{t}/d4"], "has no prompts"),
    (["distill", "--prompts", "{t}/nope.txt", "--out", "{t}/d5"], "not found"),
    (["distill", "--steps-student", "9"], "--steps-student must be 1..4"),
    (["distill", "--method", "vsd", "--gan-weight", "1e-3", "--out", "{t}/d6"], "are DMD options"),
    (["distill", "--decoder", "{t}"], "is not a model folder"),
    (["distill", "--guidance", "0.5"], "need 1 <= guidance"),
    (["distill", "--out", "{t}/file"], "exists and is not a folder"),
    (["train"], "required: WHAT"),
    (["train", "vae", "--batch-size", "-1"], "must be positive"),
    (["train", "vae", "--preset", "x"], "invalid choice"),
    (["train", "vae", "--device", "tpu"], "is not a device"),
    (["train", "classifier", "--out", "{t}/file"], "exists and is not a folder"),
    (["train", "fpdm", "--base", "shapes-oracle"], "is a bundled classifier model"),
    (["train", "fpdm", "--no-grad-min", "5", "--no-grad-max", "2"], "need 0 <= no-grad-min"),
    (["train", "tiny-decoder", "--generated", "-1"], "--generated must be non-negative"),
    (["train", "tiny-decoder", "--channels", "12"], "--channels must be a multiple of 8"),
    (["train", "text2img", "--vae", "{t}/missing"], "not found"),
    (["train", "vae", "--data", "x"], "invalid choice"),
    (["train", "view-prior", "--vae", "{t}/missing"], "not found"),
    (["train", "view-prior", "--camera-dropout", "1"], "camera-dropout must be in [0, 1)"),
    (["text-to-3d"], "a prompt is needed"),
    (["text-to-3d", "a red cube", "--prior", ""], "--prior must name"),
    (["text-to-3d", "a red cube", "--method", "x"], "invalid choice"),
    (["text-to-3d", "a red cube", "--prior", "p", "--elevation-min", "70"], "need -89 <= elevation-min"),
    (["text-to-3d", "a red cube", "--prior", "{t}/missing", "--out", "{t}/d1"], "unknown model"),
    (["text-to-3d", "a shiny teapot", "--prior", "text2img-shapes", "--out", "{t}/d1"], "does not know"),
    (["nerf", "train"], "--data is required"),
    (["nerf", "train", "--data", "{t}"], "no transforms_train.json or transforms.json"),
    (["nerf", "render", "--checkpoint", "{t}/file"], "is not a genkit nerf checkpoint"),
    (["nerf", "mesh", "--checkpoint", "{t}"], "not found"),
    (["avatar", "data", "--size", "4", "--out", "{t}/h"], "--size must be at least 16"),
    (["avatar", "data", "--light", "moon"], "invalid choice"),
    (["avatar", "train", "--data", "{t}"], "head dataset"),
    (["avatar", "render"], "exactly one of --expressions FILE and --demo"),
    (["avatar", "render", "--expressions", "{t}/bad.json", "--out", "{t}/a.mp4"], "cannot read expressions"),
    (["avatar", "render", "--expressions", "{t}/obj.npy", "--out", "{t}/a.mp4"], "cannot read expressions"),
    (["avatar", "render", "--demo", "--out", "{t}/a.txt"], "--out must end in .mp4 or .gif"),
    (["avatar", "render", "--demo", "--checkpoint", "{t}", "--out", "{t}/a.mp4"], "not a trained avatar"),
    (["avatar", "render", "--demo", "--num-samples", "0"], "--num-samples positive"),
    (["models", "extra"], "unrecognized arguments"),
    (["nope"], "invalid choice"),
]


@pytest.mark.parametrize("args, message", CASES, ids=[" ".join(a)[:60] for a, _ in CASES])
def test_bad_input_is_one_line_and_nonzero(args, message, files, capsys):
    args = [a.format(t=files) for a in args]
    rc, _, err = run(args, capsys)
    assert rc == 2 and len(err) == 1 and message in err[0], err
    for name in ("d1", "d2", "d3", "d4", "d5", "d6", "h"):  # a failed command leaves no output folder
        assert not (files / name).exists()


def test_version(capsys):
    rc, out, _ = run(["--version"], capsys)
    assert rc == 0 and out.startswith("genkit ")


PIPELINES = [name for name, info in bundled_models().items() if info["kind"] in PIPELINE_KINDS]


@pytest.mark.parametrize("name", PIPELINES)
def test_eval_runs_on_every_bundled_model(name, tmp_path, capsys):
    out = tmp_path / "e.json"
    args = ["eval", "--model", name, "--split", "heldout", "--num-prompts", "4", "--num-images", "1"]
    rc, stdout, err = run([*args, "--num-real", "200", "--out", str(out)], capsys)
    assert rc == 0, err
    r = json.loads(out.read_text())["results"]["heldout"]
    if bundled_models()[name]["kind"] == "video":
        assert r["num_clips"] == 4 and r["fvd"] > 0 and 0 <= r["motion_accuracy"] <= 1
        assert r["frame_prompt_accuracy"] >= 0.25 and r["flicker_ratio"] > 0
        assert "motion_accuracy" in stdout
        return
    assert r["num_images"] == 4 and 0 <= r["artifact_rate"] <= 1 and r["fd"] > 0 and r["fd_whole"] > 0
    if bundled_models()[name]["kind"] in ("text2img", "student"):  # the shipped generators draw the prompts
        assert r["prompt_accuracy"] >= 0.75
    assert "fd_whole" in stdout and "artifact_rate" in stdout


@pytest.mark.parametrize("name", [n for n, info in bundled_models().items() if n not in PIPELINES])
def test_eval_refuses_the_bundled_models_that_are_not_generators(name, capsys):
    rc, _, err = run(["eval", "--model", name], capsys)
    assert rc == 2 and len(err) == 1 and "not a diffusers pipeline" in err[0]
