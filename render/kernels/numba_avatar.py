"""The avatar's per-sample work fused into one CPU kernel (numba, parallel over rays): the two-level k-NN
search, the neighbours' local frames and distance weights, and the trilinear lookups in their merged hash
tables, written straight into the MLP's input. The torch reference is ``HashBlendshapeAvatar.features``
(``backend="torch"``); ``tests/test_avatar.py`` checks parity. Inference only (no gradients): training
runs the torch code.

One ray at a time, the torch code's steps with no intermediate tensors: the ``probe`` nearest coarse
vertices of the ray's middle sample, the ``shortlist`` nearest of their members, then for each sample the
``k`` nearest of those (small sorted arrays, insertion), the local coordinates, and 8 corners x levels x k
table rows accumulated into the sample's features.

``rasterize`` is the z-buffer of ``genkit.render.avatar_data.rasterize`` as a loop over the faces (same
coverage test, same ties), for the shell at render time.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch


@numba.njit(inline="always")
def _insert(dist, idx, n, d, i):
    """Insert (d, i) into the ascending ``dist``/``idx`` of capacity ``len(dist)`` holding ``n`` entries."""
    cap = len(dist)
    if n == cap and d >= dist[cap - 1]:
        return n
    j = min(n, cap - 1)
    while j > 0 and dist[j - 1] > d:
        dist[j] = dist[j - 1]
        idx[j] = idx[j - 1]
        j -= 1
    dist[j] = d
    idx[j] = i
    return min(n + 1, cap)


@numba.njit(parallel=True, cache=True, nogil=True, error_model="numpy", fastmath=True)
def _features(
    x, verts, coarse_xyz, frames, members, counts, tables, levels, size, feats, rows, cells, res, k, probe,
    cap, support, out,
):  # fmt: skip
    n_rays, n_samples = x.shape[0], x.shape[1]
    n_coarse = members.shape[0]
    inv_support = np.float32(1.0) / support
    inv_sigma2 = np.float32(4.0) / (support * support)
    one, half = np.float32(1.0), np.float32(0.5)
    chunk = 64  # rays per task: the scratch arrays are allocated once per chunk
    for first in numba.prange((n_rays + chunk - 1) // chunk):
        d_coarse = np.empty(n_coarse, np.float32)
        near_d, near_i = np.empty(probe, np.float32), np.empty(probe, np.int64)
        cand_d, cand_i = np.empty(cap, np.float32), np.empty(cap, np.int64)
        knn_d, knn_i = np.empty(k, np.float32), np.empty(k, np.int64)
        w, u = np.empty(k, np.float32), np.empty(3, np.float32)
        acc = np.empty(levels * feats + 3, np.float32)
        for r in range(first * chunk, min(first * chunk + chunk, n_rays)):
            mid = n_samples // 2
            mx, my, mz = x[r, mid, 0], x[r, mid, 1], x[r, mid, 2]
            # level 1: the probe nearest coarse vertices of the middle sample
            for c in range(n_coarse):
                dx, dy, dz = mx - coarse_xyz[0, c], my - coarse_xyz[1, c], mz - coarse_xyz[2, c]
                d_coarse[c] = dx * dx + dy * dy + dz * dz
            n_near = 0
            for c in range(n_coarse):
                n_near = _insert(near_d, near_i, n_near, d_coarse[c], c)
            # level 2: their members, the ``cap`` nearest to the middle sample (the shortlist)
            n_cand = 0
            for p in range(n_near):
                g = near_i[p]
                for j in range(counts[g]):
                    v = members[g, j]
                    dx, dy, dz = mx - verts[v, 0], my - verts[v, 1], mz - verts[v, 2]
                    n_cand = _insert(cand_d, cand_i, n_cand, dx * dx + dy * dy + dz * dz, v)
            for s in range(n_samples):
                # each sample: its k nearest of the shortlist, and their normalised distance weights
                px, py, pz = x[r, s, 0], x[r, s, 1], x[r, s, 2]
                n_knn = 0
                for j in range(n_cand):
                    v = cand_i[j]
                    dx, dy, dz = px - verts[v, 0], py - verts[v, 1], pz - verts[v, 2]
                    n_knn = _insert(knn_d, knn_i, n_knn, dx * dx + dy * dy + dz * dz, v)
                total_w = np.float32(0.0)
                for j in range(n_knn):
                    w[j] = np.float32(math.exp(-knn_d[j] * inv_sigma2)) + np.float32(1e-6)
                    total_w += w[j]
                acc[:] = 0.0
                for j in range(n_knn):
                    # the sample in the vertex's local frame, then a trilinear lookup per level
                    v = knn_i[j]
                    wj = w[j] / total_w
                    ex, ey, ez = px - verts[v, 0], py - verts[v, 1], pz - verts[v, 2]
                    for a in range(3):
                        q = (frames[v, a, 0] * ex + frames[v, a, 1] * ey + frames[v, a, 2] * ez) * inv_support
                        acc[levels * feats + a] += wj * q
                        u[a] = (min(max(q, -one), one) + one) * half
                    for lvl in range(levels):
                        rr = res[lvl]
                        fx, fy, fz = u[0] * np.float32(rr), u[1] * np.float32(rr), u[2] * np.float32(rr)
                        ix, iy, iz = (
                            min(int(fx), rr - 1),
                            min(int(fy), rr - 1),
                            min(int(fz), rr - 1),
                        )  # u >= 0
                        fx, fy, fz = fx - np.float32(ix), fy - np.float32(iy), fz - np.float32(iz)
                        gx, gy, gz = one - fx, one - fy, one - fz
                        # the 8 corners, x, y, z bits from the most significant, and their rows
                        a00, a01, a10, a11 = wj * gx * gy, wj * gx * fy, wj * fx * gy, wj * fx * fy
                        c0, c1, c2, c3 = a00 * gz, a00 * fz, a01 * gz, a01 * fz
                        c4, c5, c6, c7 = a10 * gz, a10 * fz, a11 * gz, a11 * fz
                        cb = (lvl * cells + ix + rr * (iy + rr * iz)) * 8
                        vb = (v * levels + lvl) * size
                        r0, r1 = (vb + rows[cb]) * feats, (vb + rows[cb + 1]) * feats
                        r2, r3 = (vb + rows[cb + 2]) * feats, (vb + rows[cb + 3]) * feats
                        r4, r5 = (vb + rows[cb + 4]) * feats, (vb + rows[cb + 5]) * feats
                        r6, r7 = (vb + rows[cb + 6]) * feats, (vb + rows[cb + 7]) * feats
                        for f in range(feats):
                            acc[lvl * feats + f] += (
                                c0 * tables[r0 + f]
                                + c1 * tables[r1 + f]
                                + c2 * tables[r2 + f]
                                + c3 * tables[r3 + f]
                                + c4 * tables[r4 + f]
                                + c5 * tables[r5 + f]
                                + c6 * tables[r6 + f]
                                + c7 * tables[r7 + f]
                            )
                out[r * n_samples + s, :] = acc


def avatar_features(
    x: torch.Tensor,
    vertices: torch.Tensor,
    frames: torch.Tensor,
    tables: torch.Tensor,
    corner_rows: torch.Tensor,
    resolutions: tuple[int, ...],
    index,
    k: int,
    support: float,
) -> torch.Tensor:
    """The MLP input (R * S, L * F + 3) of samples ``x`` (R, S, 3) of R rays: the k neighbours' blended
    features from the merged ``tables`` (V, L, T, F) and their weighted local coordinates, as
    ``HashBlendshapeAvatar.features`` computes them. ``index`` is the ``KNNIndex``; ``corner_rows`` the
    model's (L, cells, 8) corner rows. Points ``x`` (N, 3) are N rays of one sample."""
    x = x[:, None] if x.dim() == 2 else x
    n_rays, n_samples = x.shape[:2]
    levels, feats = tables.shape[1], tables.shape[3]
    kept = index.kept(n_samples, k)
    out = torch.empty(n_rays * n_samples, levels * feats + 3)
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))

    def arr(t, dtype=np.float32):
        return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=dtype)

    _features(
        arr(x),
        arr(vertices),
        arr(vertices[index.coarse].T),
        arr(frames),
        arr(index.members, np.int64),
        arr(index.counts, np.int64),
        arr(tables).reshape(-1),
        levels,
        tables.shape[2],
        feats,
        arr(corner_rows, np.int64).reshape(-1),
        corner_rows.shape[1],
        np.asarray(resolutions, np.int64),
        k,
        index.probe,
        index.probe * index.members.shape[1] if kept is None else kept,
        np.float32(support),
        out.numpy(),
    )
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _rasterize(px, depth, faces, size, face, bary, zbuf):
    one = np.float32(1.0)
    for f in range(faces.shape[0]):
        a, b, c = faces[f, 0], faces[f, 1], faces[f, 2]
        if depth[a] <= 1e-3 or depth[b] <= 1e-3 or depth[c] <= 1e-3:
            continue
        ux, uy = px[b, 0] - px[a, 0], px[b, 1] - px[a, 1]
        vx, vy = px[c, 0] - px[a, 0], px[c, 1] - px[a, 1]
        area = ux * vy - uy * vx
        if not area < -1e-9:  # front-facing in image coordinates (y down)
            continue
        x0 = max(math.ceil(min(px[a, 0], px[b, 0], px[c, 0]) - np.float32(0.5)), 0)
        x1 = min(math.floor(max(px[a, 0], px[b, 0], px[c, 0]) - np.float32(0.5)), size - 1)
        y0 = max(math.ceil(min(px[a, 1], px[b, 1], px[c, 1]) - np.float32(0.5)), 0)
        y1 = min(math.floor(max(px[a, 1], px[b, 1], px[c, 1]) - np.float32(0.5)), size - 1)
        ia, ib, ic = one / depth[a], one / depth[b], one / depth[c]
        for iy in range(y0, y1 + 1):
            for ix in range(x0, x1 + 1):
                dx = np.float32(ix) + np.float32(0.5) - px[a, 0]
                dy = np.float32(iy) + np.float32(0.5) - px[a, 1]
                b1 = (dx * vy - dy * vx) / area
                b2 = (ux * dy - uy * dx) / area
                b0 = one - b1 - b2
                if b0 < -1e-6 or b1 < -1e-6 or b2 < -1e-6:
                    continue
                z = one / (b0 * ia + b1 * ib + b2 * ic)
                p = iy * size + ix
                if z < zbuf[p] or (z == zbuf[p] and f > face[p]):
                    zbuf[p] = z
                    face[p] = f
                    bary[p, 0] = b0 * ia * z
                    bary[p, 1] = b1 * ib * z
                    bary[p, 2] = b2 * ic * z


def rasterize(px: torch.Tensor, depth: torch.Tensor, faces: torch.Tensor, size: int):
    """Z-buffer of projected vertices ``px`` (V, 2) with camera ``depth`` (V,): face (H*W,), perspective-
    correct barycentrics (H*W, 3), depth (H*W,); the loop of ``genkit.render.avatar_data.rasterize``."""
    face = np.full(size * size, -1, np.int64)
    bary = np.zeros((size * size, 3), np.float32)
    zbuf = np.full(size * size, np.inf, np.float32)
    _rasterize(
        np.ascontiguousarray(px.numpy(), np.float32),
        np.ascontiguousarray(depth.numpy(), np.float32),
        np.ascontiguousarray(faces.numpy(), np.int64),
        size,
        face,
        bary,
        zbuf,
    )
    return torch.from_numpy(face), torch.from_numpy(bary), torch.from_numpy(zbuf)
