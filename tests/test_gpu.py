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


@pytest.mark.gpu
def test_shipped_avatar_on_cuda_matches_cpu():
    """The GPU path (torch search, Triton table lookups, torch rasterizer and compositing) renders the
    shipped avatar as the CPU's numba path does."""
    from genkit.loading import bundled_path
    from genkit.render.avatar import EXPRESSIONS, ProceduralHead, load_avatar, render_frame
    from genkit.render.geometry import look_at

    head = ProceduralHead.build()
    e = torch.full((len(EXPRESSIONS),), 0.3)
    pose = torch.tensor([0.2, 0.05, 0.0])
    v = torch.from_numpy(head.vertices(e.numpy(), pose.numpy()))
    c2w = torch.from_numpy(look_at((0.0, 0.0, 3.2)))
    out = {}
    for device, backend in (("cpu", "auto"), ("cuda", "auto"), ("cuda", "torch")):
        model = load_avatar(bundled_path("avatar-head"))[0].to(device)
        index, nb = model.mesh_index()
        args = (e, pose, v, c2w)
        img, _ = render_frame(
            model, *(a.to(device) for a in args), 1.35 * 64, 64, index, nb, 4, backend=backend
        )
        out[device, backend] = img.cpu()
    assert (out["cpu", "auto"] < 0.95).float().mean() > 0.1  # a head, not the background
    for key in (("cuda", "auto"), ("cuda", "torch")):
        assert (out[key] - out["cpu", "auto"]).abs().max() < 1e-3, key


@pytest.mark.gpu
def test_avatar_trains_and_renders_on_cuda(tmp_path):
    from genkit.cli import main

    data, run = tmp_path / "data", tmp_path / "run"
    assert main(["avatar", "data", "--out", str(data), "--size", "24", "--frames", "4"]) == 0
    train = ["avatar", "train", "--data", str(data), "--out", str(run), "--max-train-steps", "3"]
    assert main([*train, "--rays-per-step", "64", "--frames-per-step", "1", "--eval-frames", "1"]) == 0
    render = ["avatar", "render", "--checkpoint", str(run), "--demo", "--frames", "3", "--size", "64"]
    assert main([*render, "--device", "cuda", "--out", str(tmp_path / "a.gif")]) == 0
    assert (tmp_path / "a.gif").is_file()
