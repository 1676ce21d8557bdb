"""Triton kernels of the hash grid lookup (forward: gather + trilinear blend; backward: scatter-add of
the table gradients). The torch reference is ``HashGridEncoding._forward_torch``; ``tests/
test_render_kernels.py`` checks parity on the CPU with ``TRITON_INTERPRET=1``; on CUDA the same code runs
compiled. Gradients flow to the tables only (positions are inputs, not parameters, in a radiance field).

The same kernel serves the head avatar's mesh-anchored tables (``hashgrid_triton_per_point``): each point
then looks up K grids, each in its own set of tables (the k nearest vertices' merged tables, same layout
per vertex) at its own position, and sums them with per-point weights; the torch reference is
``genkit.render.avatar.HashBlendshapeAvatar.lookup``.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

BLOCK = 128


@triton.jit
def _corner(cx, cy, cz, ox: tl.constexpr, oy: tl.constexpr, oz: tl.constexpr, r, dense, table_size):
    x = cx + ox
    y = cy + oy
    z = cz + oz
    dense_idx = x + (r + 1) * (y + (r + 1) * z)
    # Instant-NGP's spatial hash; only the low bits survive the mask, so 64-bit products are exact.
    hashed = (x * 1) ^ (y * 2654435761) ^ (z * 805459861)
    return tl.where(dense != 0, dense_idx, hashed & (table_size - 1))


@triton.jit
def _weight(fx, fy, fz, ox: tl.constexpr, oy: tl.constexpr, oz: tl.constexpr):
    wx = fx if ox == 1 else 1 - fx
    wy = fy if oy == 1 else 1 - fy
    wz = fz if oz == 1 else 1 - fz
    return wx * wy * wz


@triton.jit
def _hashgrid_kernel(
    x_ptr, table_ptr, res_ptr, dense_ptr, tid_ptr, pw_ptr, out_ptr, grad_out_ptr, grad_table_ptr,
    n, table_size, levels,
    F: tl.constexpr, K: tl.constexpr, PER_POINT: tl.constexpr, BACKWARD: tl.constexpr,
    BLOCK_N: tl.constexpr,
):  # fmt: skip
    pid = tl.program_id(0)
    lvl = tl.program_id(1)
    offs = pid * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = offs < n
    r = tl.load(res_ptr + lvl).to(tl.int64)
    dense = tl.load(dense_ptr + lvl)
    rf = r.to(tl.float32)
    row_out = offs.to(tl.int64) * (levels * F) + lvl * F
    for f in tl.static_range(F):
        if BACKWARD:
            g = tl.load(grad_out_ptr + row_out + f, mask=mask, other=0.0)
        else:
            acc = tl.zeros([BLOCK_N], dtype=tl.float32)
        for j in tl.static_range(K):  # K lookups per point (one without PER_POINT)
            p = offs.to(tl.int64) * K + j
            px = tl.minimum(tl.maximum(tl.load(x_ptr + p * 3 + 0, mask=mask, other=0.0), 0.0), 1.0)
            py = tl.minimum(tl.maximum(tl.load(x_ptr + p * 3 + 1, mask=mask, other=0.0), 0.0), 1.0)
            pz = tl.minimum(tl.maximum(tl.load(x_ptr + p * 3 + 2, mask=mask, other=0.0), 0.0), 1.0)
            sx, sy, sz = px * rf, py * rf, pz * rf
            cx = tl.minimum(tl.floor(sx), rf - 1)
            cy = tl.minimum(tl.floor(sy), rf - 1)
            cz = tl.minimum(tl.floor(sz), rf - 1)
            fx, fy, fz = sx - cx, sy - cy, sz - cz
            icx, icy, icz = cx.to(tl.int64), cy.to(tl.int64), cz.to(tl.int64)
            if PER_POINT:  # this lookup's set of tables (levels, T, F) and its weight
                tid = tl.load(tid_ptr + p, mask=mask, other=0)
                pw = tl.load(pw_ptr + p, mask=mask, other=0.0)
                base = (tid * levels + lvl) * table_size * F
            else:
                pw = 1.0
                base = lvl.to(tl.int64) * table_size * F
            for c in tl.static_range(8):
                ox: tl.constexpr = (c >> 2) & 1
                oy: tl.constexpr = (c >> 1) & 1
                oz: tl.constexpr = c & 1
                idx = _corner(icx, icy, icz, ox, oy, oz, r, dense, table_size)
                w = pw * _weight(fx, fy, fz, ox, oy, oz)
                if BACKWARD:
                    tl.atomic_add(grad_table_ptr + base + idx * F + f, w * g, mask=mask)
                else:
                    acc += w * tl.load(table_ptr + base + idx * F + f, mask=mask, other=0.0)
        if not BACKWARD:
            tl.store(out_ptr + row_out + f, acc, mask=mask)


def _launch(x, tables, resolutions, dense, out=None, grad_out=None, grad_tables=None, tid=None, pw=None):
    """``tables`` (L, T, F), or with ``tid``/``pw`` (N, K) (V, L, T, F) and ``x`` (N, K, 3)."""
    n = x.shape[0]
    levels, table_size, f = tables.shape[-3:]
    backward = grad_out is not None
    dummy = tables  # unused pointer arguments still need a tensor
    grid = (triton.cdiv(n, BLOCK), levels)
    _hashgrid_kernel[grid](
        x, tables, resolutions, dense,
        tid if tid is not None else dummy,
        pw if pw is not None else dummy,
        out if out is not None else dummy,
        grad_out if backward else dummy,
        grad_tables if backward else dummy,
        n, table_size, levels,
        F=f, K=1 if tid is None else tid.shape[1], PER_POINT=tid is not None, BACKWARD=backward,
        BLOCK_N=BLOCK,
    )  # fmt: skip


class HashGridFunction(torch.autograd.Function):
    """The lookup, with ``tid``/``pw`` (N, K) None or per-point tables and weights (see ``_launch``)."""

    @staticmethod
    def forward(ctx, x, tables, resolutions, dense, tid=None, pw=None):
        x, tables_c = x.contiguous().float(), tables.contiguous().float()
        if tid is not None:
            tid, pw = tid.contiguous().long(), pw.contiguous().float()
        levels, feats = tables.shape[-3], tables.shape[-1]
        out = torch.empty(x.shape[0], levels * feats, device=x.device, dtype=torch.float32)
        if x.shape[0]:
            _launch(x, tables_c, resolutions, dense, out=out, tid=tid, pw=pw)
        ctx.save_for_backward(x, resolutions, dense, tid, pw)
        ctx.table_shape = tables.shape
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, resolutions, dense, tid, pw = ctx.saved_tensors
        grad_tables = torch.zeros(ctx.table_shape, device=x.device, dtype=torch.float32)
        if x.shape[0]:
            grad_out = grad_out.contiguous().float()
            _launch(
                x, grad_tables, resolutions, dense, grad_out=grad_out, grad_tables=grad_tables, tid=tid, pw=pw
            )
        return None, grad_tables, None, None, None, None


def hashgrid_triton(x: torch.Tensor, tables: torch.Tensor, resolutions: torch.Tensor, dense: torch.Tensor):
    """Hash grid features (N, L * F) of points ``x`` (N, 3) in [0, 1]; ``resolutions`` and ``dense`` are
    int32 tensors (L,) on the device of ``x``."""
    return HashGridFunction.apply(x, tables, resolutions, dense)


def hashgrid_triton_per_point(
    x: torch.Tensor,
    tables: torch.Tensor,
    resolutions: torch.Tensor,
    dense: torch.Tensor,
    table_index: torch.Tensor,
    weights: torch.Tensor,
) -> torch.Tensor:
    """Features (N, L * F) of N points, each the ``weights`` (N, K) sum of K lookups at ``x`` (N, K, 3) in
    [0, 1] in the tables ``tables[table_index]`` (``tables`` (V, L, T, F) with T a power of two,
    ``table_index`` (N, K)); ``resolutions`` and ``dense`` as for ``hashgrid_triton``. Gradients reach the
    tables only."""
    return HashGridFunction.apply(x, tables, resolutions, dense, table_index, weights)
