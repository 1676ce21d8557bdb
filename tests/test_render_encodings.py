"""The torch hash grid (render/encodings.py): dense and hashed indexing, exact trilinear interpolation."""

import torch

from genkit.render.encodings import HashGridEncoding


def test_levels_are_dense_until_the_table_is_full_then_hashed():
    enc = HashGridEncoding(
        levels=6, features_per_level=2, log2_table_size=12, base_resolution=4, max_resolution=64
    )
    assert enc.resolutions == [4, 6, 12, 21, 36, 64]
    assert enc.dense == [(r + 1) ** 3 <= 4096 for r in enc.resolutions]
    assert enc.dense[0] and not enc.dense[-1]
    corners = torch.randint(0, 49, (1000, 3))
    idx = enc.corner_indices(5, corners)
    assert idx.min() >= 0 and idx.max() < 4096
    # dense indexing is a bijection on a dense level's vertices
    r = enc.resolutions[0]
    grid = torch.stack(torch.meshgrid(*[torch.arange(r + 1)] * 3, indexing="ij"), -1).reshape(-1, 3)
    assert enc.corner_indices(0, grid).unique().numel() == (r + 1) ** 3


def test_trilinear_interpolation_reproduces_a_linear_function_on_dense_levels():
    enc = HashGridEncoding(
        levels=2, features_per_level=1, log2_table_size=12, base_resolution=4, max_resolution=8
    )
    assert all(enc.dense)
    coef = torch.tensor([0.3, -1.2, 2.0])
    with torch.no_grad():
        for lvl, r in enumerate(enc.resolutions):
            grid = torch.stack(torch.meshgrid(*[torch.arange(r + 1)] * 3, indexing="ij"), -1).reshape(-1, 3)
            enc.tables[lvl, enc.corner_indices(lvl, grid), 0] = (grid.float() / r) @ coef
    x = torch.rand(500, 3, generator=torch.Generator().manual_seed(0))
    out = enc(x)
    torch.testing.assert_close(out[:, 0], x @ coef, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[:, 1], x @ coef, atol=1e-5, rtol=1e-5)
    # the boundary x = 1 is inside the last cell
    torch.testing.assert_close(enc(torch.ones(1, 3))[0, 0], coef.sum(), atol=1e-5, rtol=1e-5)


def test_gradients_reach_only_the_looked_up_rows():
    enc = HashGridEncoding(
        levels=3, features_per_level=2, log2_table_size=10, base_resolution=2, max_resolution=32
    )
    enc(torch.rand(4, 3)).square().sum().backward()
    touched = (enc.tables.grad.abs().sum(-1) > 0).sum(-1)
    assert (touched > 0).all() and (touched <= 4 * 8).all()
    assert enc.out_dim == 6
