"""CUDA checks: skipped unless torch.cuda.is_available() (see conftest.py)."""

import pytest
import torch

from genkit.assets import bundled_models
from genkit.pipelines.text2img import load_text2img

PROMPT = "a large blue square in the center"


@pytest.mark.gpu
def test_bundled_model_on_cuda_matches_cpu():
    path = bundled_models()["text2img-shapes"]["path"]
    out = {}
    for device in ("cpu", "cuda"):
        pipe = load_text2img(path, device=device)
        g = torch.Generator("cpu").manual_seed(0)
        out[device] = pipe(PROMPT, num_inference_steps=10, generator=g, output_type="pt").images.float().cpu()
    assert (out["cpu"] - out["cuda"]).abs().mean() < 0.02


@pytest.mark.gpu
def test_bundled_fpdm_on_cuda_matches_cpu_and_counts_the_same():
    from genkit.pipelines.fpdm import load_fpdm

    path = bundled_models()["fpdm-shapes"]["path"]
    out = {}
    for device in ("cpu", "cuda"):
        pipe = load_fpdm(path, device=device)
        g = torch.Generator("cpu").manual_seed(0)
        out[device] = pipe(
            PROMPT, num_inference_steps=10, iterations_per_step=6, generator=g, output_type="pt"
        )
    assert (out["cpu"].images.float().cpu() - out["cuda"].images.float().cpu()).abs().mean() < 0.02
    assert out["cpu"].flops == out["cuda"].flops and out["cpu"].block_evaluations == 10 * 8
