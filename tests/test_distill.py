"""DMD and VSD trainers, the OneStepPipeline and ``genkit distill`` on tiny Stable-Diffusion-structured
teachers built from diffusers classes (see dummies.py)."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from dummies import dummy_pipeline
from safetensors.torch import load_file

from genkit.cli import main
from genkit.distill import DistillConfig, Teacher
from genkit.distill import dmd as dmd_module
from genkit.distill.dmd import train_dmd
from genkit.pipelines.one_step import OneStepPipeline, load_one_step, student_timesteps
from genkit.pipelines.one_step.pipeline_one_step import student_scheduler
from genkit.utils import GenkitError

PROMPT = "a small red circle at the top left"


def save_teacher(path, prediction_type="v_prediction"):
    pipe = dummy_pipeline()
    if prediction_type != "v_prediction":
        # as Stable Diffusion: epsilon prediction with a non-zero terminal SNR
        pipe.scheduler = type(pipe.scheduler).from_config(
            pipe.scheduler.config, prediction_type=prediction_type, rescale_betas_zero_snr=False
        )
    pipe.save_pretrained(path, safe_serialization=True)
    return path


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    return save_teacher(tmp_path_factory.mktemp("teacher"))


def tiny(teacher, out, **kw):
    base = dict(max_train_steps=2, batch_size=2, checkpointing_steps=1)
    return DistillConfig(teacher=str(teacher), out=str(out), **{**base, **kw})


def unet_weights(folder, sub):
    return load_file(next((folder / sub).glob("*.safetensors")))


def test_student_timesteps_and_bad_counts():
    assert student_timesteps(1) == [999]
    assert student_timesteps(4) == [999, 749, 499, 249]
    with pytest.raises(ValueError, match="1 to 4"):
        student_timesteps(5)
    with pytest.raises(GenkitError, match="1..4"):
        DistillConfig(steps_student=0)


def test_dmd_trains_the_student_and_resumes(teacher_dir, tmp_path, capsys):
    out = tmp_path / "dmd"
    cfg = tiny(teacher_dir, out, fake_updates=2, learning_rate=1e-3, fake_learning_rate=1e-3)
    model = train_dmd(cfg)
    before, after = unet_weights(teacher_dir, "unet"), unet_weights(model, "denoiser")
    assert before.keys() == after.keys()
    assert max((before[k] - after[k]).abs().max().item() for k in before) > 1e-4  # the student moved
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-1", "checkpoint-2"]

    pipe = load_one_step(model)
    assert pipe.config.student_timesteps == [999]
    a = pipe(PROMPT, generator=torch.Generator().manual_seed(0), output_type="np").images
    b = pipe(PROMPT, generator=torch.Generator().manual_seed(0), output_type="np").images
    assert a.shape == (1, 32, 32, 3) and np.isfinite(a).all() and a.std() > 0
    np.testing.assert_array_equal(a, b)  # seeded

    # a longer run with the same --out resumes from checkpoint-2 and does one more step
    capsys.readouterr()
    train_dmd(dataclasses.replace(cfg, max_train_steps=3))
    assert "resumed from" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-2", "checkpoint-3"]


def test_dmd_with_gan_regression_and_random_guidance(teacher_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(dmd_module, "GAN_REAL_IMAGES", 64)
    model = train_dmd(
        tiny(
            teacher_dir,
            tmp_path / "gan",
            fake_updates=1,
            gan_weight=1e-3,
            guidance_max=6.0,
            regression_weight=0.1,
            regression_steps=2,
            max_train_steps=1,
        )
    )
    assert (model / "model_index.json").is_file()
    info = json.loads((model / "distill.json").read_text())
    assert info["method"] == "dmd" and info["steps_this_run"] == 1 and info["config"]["gan_weight"] == 1e-3


def test_vsd_lora_two_step_student_end_to_end_through_the_cli(tmp_path):
    teacher = save_teacher(tmp_path / "eps_teacher", "epsilon")
    out = tmp_path / "vsd"
    rc = main(
        [
            "distill",
            "--method",
            "vsd",
            "--teacher",
            str(teacher),
            "--out",
            str(out),
            "--steps-student",
            "2",
            "--max-train-steps",
            "2",
            "--batch-size",
            "2",
            "--lora-rank",
            "4",
        ]
    )
    assert rc == 0
    index = json.loads((out / "model" / "model_index.json").read_text())
    assert index["_class_name"] == "OneStepPipeline" and index["student_timesteps"] == [999, 499]
    assert index["scheduler"] == ["diffusers", "LCMScheduler"]
    # the student has no LoRA weights: it is a plain UNet
    assert not any("lora" in k for k in unet_weights(out / "model", "denoiser"))
    gen = tmp_path / "gen"
    assert (
        main(["generate", PROMPT, "--model", str(out / "model"), "--num-images", "2", "--out", str(gen)]) == 0
    )
    meta = [json.loads(line) for line in (gen / "metadata.jsonl").read_text().splitlines()]
    assert [m["steps"] for m in meta] == [2, 2]
    assert main(["generate", PROMPT, "--model", str(out / "model"), "--steps", "3", "--out", str(gen)]) == 2


def test_one_step_pipeline_roundtrip_and_timestep_subsets(tmp_path):
    c = dummy_pipeline().components
    pipe = OneStepPipeline(
        denoiser=c["unet"],
        vae=c["vae"],
        text_encoder=c["text_encoder"],
        tokenizer=c["tokenizer"],
        scheduler=student_scheduler(c["scheduler"].config, 4),
        student_timesteps=[999, 749, 499, 249],
    )
    pipe.set_progress_bar_config(disable=True)
    assert pipe.timesteps_for(None) == [999, 749, 499, 249]
    assert pipe.timesteps_for(2) == [999, 249]
    with pytest.raises(ValueError, match="1..4"):
        pipe.timesteps_for(5)
    a = pipe(
        PROMPT, num_inference_steps=4, generator=torch.Generator().manual_seed(1), output_type="np"
    ).images
    pipe.save_pretrained(tmp_path / "p", safe_serialization=True)
    b = load_one_step(tmp_path / "p")(
        PROMPT, num_inference_steps=4, generator=torch.Generator().manual_seed(1), output_type="np"
    ).images
    np.testing.assert_allclose(a, b, atol=1e-5)
    with pytest.raises(ValueError, match="decreasing"):
        OneStepPipeline(
            **{k: c[k] for k in ("vae", "text_encoder", "tokenizer", "scheduler")},
            denoiser=c["unet"],
            student_timesteps=[249, 999],
        )


def test_teacher_bad_inputs(teacher_dir, tmp_path):
    import shutil

    no_sched = tmp_path / "no_sched"
    shutil.copytree(teacher_dir, no_sched)
    shutil.rmtree(no_sched / "scheduler")
    with pytest.raises(GenkitError, match="no scheduler"):
        Teacher(str(no_sched))
    flow = tmp_path / "flow"
    shutil.copytree(teacher_dir, flow)
    cfg_path = flow / "scheduler" / "scheduler_config.json"
    cfg_path.write_text(json.dumps({**json.loads(cfg_path.read_text()), "prediction_type": "flow"}))
    with pytest.raises(GenkitError, match="prediction type 'flow'"):
        Teacher(str(flow))
    zero_snr_eps = tmp_path / "zero_snr_eps"
    shutil.copytree(teacher_dir, zero_snr_eps)
    cfg_path = zero_snr_eps / "scheduler" / "scheduler_config.json"
    cfg_path.write_text(json.dumps({**json.loads(cfg_path.read_text()), "prediction_type": "epsilon"}))
    with pytest.raises(GenkitError, match="zero-terminal-SNR"):
        Teacher(str(zero_snr_eps))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--steps-student", "5"], "--steps-student must be 1..4"),
        (["--teacher", "/nonexistent/teacher"], "unknown model"),
        (["--guidance", "0.5"], "guidance"),
    ],
)
def test_cli_bad_input_is_one_line(args, message, tmp_path, capsys):
    rc = main(["distill", "--out", str(tmp_path / "o"), *args])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "o" / "model").exists()


def test_tiny_decoder_trains_and_ships_with_a_student(teacher_dir, tmp_path):
    from genkit.training.tiny_decoder import TinyDecoderTrainConfig, train_tiny_decoder

    dec = train_tiny_decoder(
        TinyDecoderTrainConfig(
            vae_from=str(teacher_dir),
            out=str(tmp_path / "dec"),
            channels=8,
            max_train_steps=2,
            batch_size=4,
            num_train_images=16,
            generated=4,
            checkpointing_steps=1,
        )
    )
    model = train_dmd(tiny(teacher_dir, tmp_path / "s", fake_updates=1, max_train_steps=1, decoder=str(dec)))
    index = json.loads((model / "model_index.json").read_text())
    assert index["vae"] == ["diffusers", "AutoencoderKL"]
    pipe = load_one_step(model)
    a = pipe(PROMPT, generator=torch.Generator().manual_seed(0), output_type="np").images
    assert a.shape == (1, 32, 32, 3) and np.isfinite(a).all()
    with pytest.raises(GenkitError, match="not a model folder"):
        DistillConfig(decoder=str(tmp_path / "missing"))
