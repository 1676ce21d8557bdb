"""The shipped models: fp16 safetensors in diffusers format, loadable by diffusers itself, and good."""

import json
from pathlib import Path

import numpy as np
import torch
from diffusers import StableDiffusionPipeline
from safetensors import safe_open

from genkit.assets import bundled_models
from genkit.data.shapes import ShapesDataset, parse_caption
from genkit.metrics.evaluate import load_oracle, prompt_labels
from genkit.metrics.scores import prompt_accuracy

MODELS = bundled_models()
T2I = Path(MODELS["text2img-shapes"]["path"])
PROMPTS = [
    "a small red circle at the top left",
    "a large blue square in the center",
    "a small yellow triangle at the bottom right",
    "a large purple cross at the top right",
    "a large green triangle at the bottom left",
    "a small blue cross in the center",
    "a large red square at the top right",
    "a small purple circle at the bottom left",
]


def test_assets_are_small_fp16_safetensors():
    files = list(T2I.rglob("*.safetensors")) + list(
        Path(MODELS["shapes-oracle"]["path"]).rglob("*.safetensors")
    )
    assert len(files) == 4  # unet, vae, text encoder, oracle
    total = sum(f.stat().st_size for f in files)
    assert total < 12 * 2**20
    for f in files:
        with safe_open(f, "pt") as st:
            assert {st.get_tensor(k).dtype for k in st.keys()} == {torch.float16}
    index = json.loads((T2I / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline" and index["safety_checker"] == [None, None]
    assert not list(T2I.rglob("*.bin")) and not list(T2I.rglob("*.pkl"))


def test_oracle_reads_real_images():
    oracle = load_oracle()
    ds = ShapesDataset(600, seed=4242, split="all")
    batch = ds.batch(range(600))
    pred = oracle.predict(batch["pixel_values"])
    for k in ("shape", "color", "position", "size"):
        assert (pred[k] == batch["labels"][k]).float().mean() > 0.97, k


def test_diffusers_loads_bundled_model_and_draws_the_prompts():
    pipe = StableDiffusionPipeline.from_pretrained(T2I)  # diffusers' own class, no genkit code
    pipe.set_progress_bar_config(disable=True)
    prompts = PROMPTS
    gens = [torch.Generator().manual_seed(i) for i in range(len(prompts))]
    images = pipe(
        prompts, num_inference_steps=15, guidance_scale=4.0, generator=gens, output_type="pt"
    ).images
    assert images.shape == (8, 3, 32, 32) and np.isfinite(images.numpy()).all()
    pred = load_oracle().predict(images * 2 - 1)
    assert prompt_accuracy(pred, prompt_labels(prompts)) >= 0.75
    assert all(not parse_caption(p).heldout for p in prompts)


def test_bundled_one_step_students_draw_the_prompts_in_one_step():
    from genkit.loading import load_pipeline

    prompts = PROMPTS
    for name in ("student-shapes", "student-vsd-shapes"):
        path = Path(MODELS[name]["path"])
        index = json.loads((path / "model_index.json").read_text())
        assert index["_class_name"] == "OneStepPipeline" and index["student_timesteps"] == [999]
        for f in path.rglob("*.safetensors"):
            with safe_open(f, "pt") as st:
                assert {st.get_tensor(k).dtype for k in st.keys()} == {torch.float16}
        pipe = load_pipeline(path)
        gens = [torch.Generator().manual_seed(i) for i in range(len(prompts))]
        images = pipe(prompts, generator=gens, output_type="pt").images
        assert images.shape == (8, 3, 32, 32) and np.isfinite(images.numpy()).all()
        pred = load_oracle().predict(images * 2 - 1)
        assert prompt_accuracy(pred, prompt_labels(prompts)) >= 0.75, name
