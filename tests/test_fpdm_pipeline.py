"""FPDMPipeline on dummy components: allocation, warm start, counters, round trip, bad arguments."""

import numpy as np
import pytest
import torch
from diffusers import EulerDiscreteScheduler

from genkit.loading import load_pipeline
from genkit.models.transformer_fpdm import FPDMTransformer2DModel
from genkit.pipelines.fpdm import FPDMPipeline, allocate_iterations
from tests.dummies import dummy_components, randomize_zero_init

PROMPT = "a small red circle at the top left"


def dummy_fpdm_pipeline() -> FPDMPipeline:
    c = dummy_components()
    c.pop("unet")
    torch.manual_seed(0)
    tr = FPDMTransformer2DModel(
        sample_size=8,
        patch_size=2,
        in_channels=4,
        hidden_size=32,
        num_attention_heads=2,
        cross_attention_dim=32,
        num_iterations=3,
    ).eval()
    randomize_zero_init(tr, 0.5)
    pipe = FPDMPipeline(transformer=tr, **c)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run(pipe, **kw):
    kw = {"num_inference_steps": 2, "generator": torch.Generator().manual_seed(0), "output_type": "np", **kw}
    return pipe(PROMPT, **kw)


def test_allocation_policies():
    assert allocate_iterations("constant", 4, 5) == [5, 5, 5, 5]
    inc, dec = allocate_iterations("increasing", 10, 6), allocate_iterations("decreasing", 10, 6)
    assert sum(inc) == sum(dec) == 60 and min(inc) >= 1
    assert inc == sorted(inc) and inc[-1] > inc[0] and dec == inc[::-1]
    assert allocate_iterations("increasing", 1, 4) == [4]
    assert allocate_iterations([0, 2, 7], 3, 99) == [0, 2, 7]
    with pytest.raises(ValueError, match="unknown allocation policy"):
        allocate_iterations("cosine", 3, 2)
    with pytest.raises(ValueError, match="explicit allocation needs 3"):
        allocate_iterations([1, 2], 3, 2)
    with pytest.raises(ValueError, match="non-negative"):
        allocate_iterations([1, -2, 3], 3, 2)


def test_pipeline_values_counters_and_determinism():
    pipe = dummy_fpdm_pipeline()
    a, b = run(pipe), run(pipe)
    assert a.images.shape == (1, 32, 32, 3) and np.array_equal(a.images, b.images)
    assert a.iterations == [3, 3] and a.block_evaluations == 2 * (1 + 3 + 1)
    no_cfg = run(pipe, guidance_scale=1.0)
    assert 1.8 < a.flops / no_cfg.flops < 2.2  # guidance doubles the batch
    more = run(pipe, iterations_per_step=6)
    assert more.flops > a.flops and more.block_evaluations == 2 * (1 + 6 + 1)
    assert np.abs(a.images - run(pipe, guidance_scale=1.0).images).max() > 1e-4


def test_warm_start_changes_the_start_and_cuts_iterations_at_a_tolerance():
    pipe = dummy_fpdm_pipeline()
    cold = run(pipe, num_inference_steps=6, iterations_per_step=40, tol=1e-4, warm_start=False)
    warm = run(pipe, num_inference_steps=6, iterations_per_step=40, tol=1e-4, warm_start=True)
    used_cold = sum(len(r) for r in cold.residuals[1:])
    used_warm = sum(len(r) for r in warm.residuals[1:])
    assert used_warm < used_cold
    assert warm.residuals[1][0] < cold.residuals[1][0]
    assert np.abs(warm.images - cold.images).max() < 0.05  # same fixed point, reached from another start


def test_round_trip_and_scheduler_swap(tmp_path):
    pipe = dummy_fpdm_pipeline()
    ref = run(pipe).images
    pipe.save_pretrained(tmp_path)
    again = FPDMPipeline.from_pretrained(tmp_path)
    again.set_progress_bar_config(disable=True)
    np.testing.assert_allclose(run(again).images, ref, atol=1e-6)
    swapped = load_pipeline(tmp_path, scheduler="euler")  # dispatches on model_index.json's _class_name
    assert isinstance(swapped, FPDMPipeline) and isinstance(swapped.scheduler, EulerDiscreteScheduler)
    out = run(swapped, allocation="decreasing", iterations_per_step=2)
    assert out.iterations == allocate_iterations("decreasing", 2, 2) and np.isfinite(out.images).all()


def test_bad_arguments():
    pipe = dummy_fpdm_pipeline()
    with pytest.raises(ValueError, match="num_inference_steps must be positive"):
        run(pipe, num_inference_steps=0)
    with pytest.raises(ValueError, match="unknown allocation policy"):
        run(pipe, allocation="sideways")
    with pytest.raises(ValueError, match="at least 1"):
        run(pipe, iterations_per_step=-1)
