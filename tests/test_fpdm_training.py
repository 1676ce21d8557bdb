"""``genkit train fpdm`` on a dummy Stable Diffusion base: FPDM and the DiT baseline, S-JFB counts."""

import numpy as np
import torch

from genkit.models.transformer_dit import TextDiT2DModel
from genkit.models.transformer_fpdm import FPDMTransformer2DModel
from genkit.pipelines.fpdm import FPDMPipeline
from genkit.training.fpdm import FPDMTrainConfig, iteration_counts, train_fpdm
from tests.dummies import dummy_pipeline


def test_iteration_counts_are_seeded_and_in_range():
    cfg = FPDMTrainConfig(no_grad_min=0, no_grad_max=4, grad_min=2, grad_max=3)
    draws = [iteration_counts(cfg, s) for s in range(200)]
    assert draws == [iteration_counts(cfg, s) for s in range(200)]
    assert all(2 <= g <= 3 and 2 <= n <= 7 and n - g <= 4 for n, g in draws)
    assert len(set(draws)) > 5
    full = FPDMTrainConfig(backprop="full", no_grad_max=4, grad_min=2, grad_max=3)
    assert all(g is None for _, g in (iteration_counts(full, s) for s in range(20)))
    jfb = FPDMTrainConfig(backprop="jfb", no_grad_max=4, grad_min=2, grad_max=3)
    assert [iteration_counts(jfb, s)[0] for s in range(20)] == [n for n, _ in draws[:20]]


def test_train_fpdm_and_dit_write_loadable_pipelines(tmp_path):
    base = tmp_path / "base"
    dummy_pipeline().save_pretrained(base)
    small = dict(
        base=str(base),
        hidden_size=32,
        num_attention_heads=2,
        max_train_steps=2,
        batch_size=4,
        num_train_images=32,
        checkpointing_steps=1,
        no_grad_max=2,
        grad_max=2,
        lr_warmup_steps=1,
    )
    for arch, cls in (("fpdm", FPDMTransformer2DModel), ("dit", TextDiT2DModel)):
        out = train_fpdm(
            FPDMTrainConfig(out=str(tmp_path / arch), arch=arch, sample_iterations=2, depth=3, **small)
        )
        pipe = FPDMPipeline.from_pretrained(out)
        pipe.set_progress_bar_config(disable=True)
        assert isinstance(pipe.transformer, cls)
        res = pipe(
            "a small red circle at the top left",
            num_inference_steps=2,
            output_type="np",
            generator=torch.Generator().manual_seed(0),
        )
        assert res.images.shape == (1, 32, 32, 3) and np.isfinite(res.images).all()
        assert res.block_evaluations == (2 * (1 + 2 + 1) if arch == "fpdm" else 2 * 3)
        assert res.flops > 0
