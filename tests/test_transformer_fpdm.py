"""FPDMTransformer2DModel: explicit fixed-point state, solvers, warm start, S-JFB memory, bad arguments."""

import pytest
import torch

from genkit.models.transformer_fpdm import FPDMTransformer2DModel
from genkit.training.memory import saved_activation_bytes
from tests.dummies import randomize_zero_init


def dummy_model(num_iterations: int = 4, contraction: float = 0.3) -> FPDMTransformer2DModel:
    """A tiny model whose zero-initialised (adaLN-Zero, final) weights are randomised, as after training,
    and whose implicit map is made contractive by scaling fc1_z."""
    torch.manual_seed(0)
    m = FPDMTransformer2DModel(
        sample_size=8,
        patch_size=2,
        in_channels=4,
        hidden_size=32,
        num_attention_heads=2,
        cross_attention_dim=16,
        num_iterations=num_iterations,
    ).eval()
    randomize_zero_init(m, contraction)
    return m


def inputs(b=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 4, 8, 8, generator=g), torch.tensor([500] * b), torch.randn(b, 5, 16, generator=g)


def test_forward_values_and_no_hidden_state():
    m = dummy_model()
    x, t, ctx = inputs()
    with torch.no_grad():
        a, b = m(x, t, ctx), m(x, t, ctx)
    assert a.sample.shape == (2, 4, 8, 8) and a.solution.shape == (2, 16, 32)
    assert torch.equal(a.sample, b.sample)  # nothing carried between calls
    assert a.sample.abs().mean() > 1e-3
    assert a.block_evaluations == 1 + 4 + 1 and len(a.residuals) == 4
    assert a.residuals[-1] < a.residuals[0]  # contracting
    with torch.no_grad():
        c = m(x, t, ctx, return_solution=False)
    assert c.solution is None and torch.equal(c.sample, a.sample)
    # batched (as under CFG) equals one by one
    with torch.no_grad():
        one = m(x[1:], t[1:], ctx[1:]).sample
    torch.testing.assert_close(a.sample[1:], one, atol=1e-5, rtol=1e-4)


def test_save_load_round_trip(tmp_path):
    m = dummy_model()
    x, t, ctx = inputs()
    m.save_pretrained(tmp_path)
    again = FPDMTransformer2DModel.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(again(x, t, ctx).sample, m(x, t, ctx).sample, atol=0, rtol=0)
    assert again.config.num_iterations == 4


def test_anderson_matches_picard_at_tight_tolerance():
    m = dummy_model(contraction=0.8)
    x, t, ctx = inputs()
    with torch.no_grad():
        pic = m(x, t, ctx, num_iterations=300, solver="picard", tol=1e-6)
        anc = m(x, t, ctx, num_iterations=300, solver="anderson", tol=1e-6)
        dmp = m(x, t, ctx, num_iterations=300, solver="damped", damping=0.7, tol=1e-6)
    assert pic.residuals[-1] < 1e-6 and anc.residuals[-1] < 1e-6 and dmp.residuals[-1] < 1e-6
    torch.testing.assert_close(anc.solution, pic.solution, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(dmp.solution, pic.solution, atol=1e-4, rtol=1e-4)


def test_warm_start_gives_smaller_first_residual():
    m = dummy_model(contraction=0.8)
    x, _, ctx = inputs()
    with torch.no_grad():
        prev = m(x, torch.tensor([520, 520]), ctx, num_iterations=30)
        cold = m(x, torch.tensor([500, 500]), ctx, num_iterations=3)
        warm = m(x, torch.tensor([500, 500]), ctx, num_iterations=3, initial_solution=prev.solution)
    assert warm.residuals[0] < 0.5 * cold.residuals[0]


def test_sjfb_saves_less_than_full_backprop_and_trains_every_part():
    m = dummy_model(num_iterations=8).train()
    x, t, ctx = inputs()
    params = list(m.parameters())
    full = saved_activation_bytes(
        lambda: m(x, t, ctx, num_grad_iterations=None).sample.sum().backward(), params
    )
    m.zero_grad()
    jfb = saved_activation_bytes(lambda: m(x, t, ctx, num_grad_iterations=1).sample.sum().backward(), params)
    assert jfb < 0.5 * full
    for name in (
        "pre_blocks.0.mlp.0.weight",
        "fixed_point_block.mlp.0.weight",
        "inject_fc1_inj.weight",
        "post_blocks.0.mlp.0.weight",
    ):
        assert m.get_parameter(name).grad.abs().sum() > 0, name
    with torch.no_grad():  # under no_grad every iteration is graph-free regardless of num_grad_iterations
        assert len(m(x, t, ctx, num_grad_iterations=2).residuals) == 8


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_iterations": -1}, "num_iterations must be >= 0"),
        ({"solver": "newton"}, "unknown solver"),
        ({"num_iterations": 3, "num_grad_iterations": 5}, "num_grad_iterations must be in"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, message):
    m = dummy_model()
    x, t, ctx = inputs()
    with pytest.raises(ValueError, match=message):
        m(x, t, ctx, **kwargs)


def test_convolutional_head_starts_at_zero_and_round_trips(tmp_path):
    from genkit.models.transformer_dit import TextDiT2DModel

    torch.manual_seed(0)
    kw = dict(
        sample_size=8,
        patch_size=2,
        in_channels=4,
        hidden_size=32,
        num_attention_heads=2,
        cross_attention_dim=16,
    )
    for model in (
        FPDMTransformer2DModel(head_channels=8, **kw),
        TextDiT2DModel(depth=2, head_channels=8, **kw),
    ):
        x, t, ctx = inputs()
        with torch.no_grad():
            assert model(x, t, ctx).sample.abs().max() == 0  # the head's last map starts at zero
        with torch.no_grad():  # as after training: the zero-initialised maps get weights
            for m in model.modules():
                if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)) and m.weight.abs().sum() == 0:
                    torch.nn.init.normal_(m.weight, std=0.05)
            out = model(x, t, ctx).sample
        assert out.shape == (2, 4, 8, 8) and out.abs().mean() > 1e-3
        model.save_pretrained(tmp_path / type(model).__name__)
        loaded = type(model).from_pretrained(tmp_path / type(model).__name__)
        with torch.no_grad():
            torch.testing.assert_close(loaded(x, t, ctx).sample, out)
    assert FPDMTransformer2DModel(**kw).final.head is None  # without head_channels: the linear head
