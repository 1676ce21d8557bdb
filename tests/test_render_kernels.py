"""Triton kernels against the torch reference (CPU: TRITON_INTERPRET=1, set in conftest.py)."""

import pytest
import torch

from genkit.render.encodings import HashGridEncoding

pytest.importorskip("triton")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.mark.parametrize("features", [1, 2, 4])
def test_hashgrid_triton_matches_torch(features):
    torch.manual_seed(0)
    enc = HashGridEncoding(
        levels=5,
        features_per_level=features,
        log2_table_size=10,
        base_resolution=3,
        max_resolution=200,
        init_scale=1.0,
    ).to(DEVICE)
    assert any(enc.dense) and not all(enc.dense)  # both indexing modes are exercised
    x = torch.rand(300, 3, device=DEVICE)
    x[:5] = torch.tensor([0.0, 1.0, 0.5])  # boundaries
    ref = enc._forward_torch(x)
    enc.backend = "triton"
    out = enc(x)
    assert (out - ref).abs().max().item() < 1e-5
    g = torch.randn_like(ref)
    (grad_ref,) = torch.autograd.grad(ref, enc.tables, g)
    (grad_tri,) = torch.autograd.grad(out, enc.tables, g)
    assert (grad_tri - grad_ref).abs().max().item() < 1e-5


def test_auto_backend_uses_torch_on_cpu():
    from genkit.render.backends import use_triton

    enc = HashGridEncoding(levels=2, log2_table_size=8, backend="auto")
    assert not use_triton("cpu", enc.backend)
    with pytest.raises(ValueError, match="backend"):
        HashGridEncoding(backend="cuda")


def test_march_triton_matches_torch():
    from genkit.render.estimators import OccGridEstimator

    torch.manual_seed(0)
    est = OccGridEstimator([-1.0, -1, -1, 1, 1, 1], resolution=16).to(DEVICE)
    est.update_every_n_steps(0, lambda x: (x.norm(dim=-1) < 0.6).float(), occ_thre=0.5, n=1)
    g = torch.Generator().manual_seed(0)
    o = torch.nn.functional.normalize(torch.randn(200, 3, generator=g), dim=-1) * 3
    d = torch.nn.functional.normalize((torch.rand(200, 3, generator=g) - 0.5) * 0.8 - o, dim=-1)
    o, d = o.to(DEVICE), d.to(DEVICE)
    est.backend = "torch"
    ref = est.sampling(o, d, render_step_size=0.02)
    est.backend = "triton"
    out = est.sampling(o, d, render_step_size=0.02)
    assert ref[0].numel() > 100
    for a, b in zip(ref, out, strict=True):
        assert a.shape == b.shape and (a.float() - b.float()).abs().max().item() < 1e-5
