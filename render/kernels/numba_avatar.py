"""The avatar's per-sample work fused into one CPU kernel (numba, parallel over rays): the two-level k-NN
search, the neighbours' local frames and distance weights, and the trilinear lookups in their merged hash
tables, written straight into the MLP's input. The torch reference is ``HashBlendshapeAvatar.features``
(``backend="torch"``); ``tests/test_avatar.py`` checks parity. Inference only (no gradients): training
runs the torch code.

One ray at a time, the torch code's steps with no intermediate tensors: the ``probe`` nearest coarse
vertices of the ray's middle sample, the ``shortlist`` nearest of their members, then for each sample the
``k`` nearest of those (small sorted arrays, insertion), the local coordinates, and 8 corners x levels x k
table rows accumulated into the sample's features (in blocks of 4). Neighbouring rays are close: each ray
ranks only the vertices no farther than the previous ray's picks (at either level, when those are among its
candidates; so the result is exact), and the coordinates it compares are contiguous (vectorised).

``rasterize`` is the z-buffer of ``genkit.render.raster.rasterize`` as a loop over the faces (same
coverage test, same ties), for the shell at render time; ``shell_rays`` the shell's samples and
``composite_image`` their compositing into the image (``genkit.render.avatar.model.shell_samples`` and
``composite``), ``vertex_frames`` the vertices' local frames of ``genkit.render.avatar.model.vertex_frames``.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch
import torch.nn.functional as F


def _match_torch_threads() -> None:
    """Run the parallel loops on as many threads as torch uses (``torch.set_num_threads``)."""
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))


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
    x, verts, coarse_xyz, member_xyz, frames, members, counts, owner, tables, levels, size, feats, rows,
    cells, res, k, probe, cap, support, normals, with_normals, out,
):  # fmt: skip
    n_rays, n_samples = x.shape[0], x.shape[1]
    n_coarse, width = members.shape
    # the tables' rows of features padded to blocks of 4, flat; unsigned indices (numba wraps negative
    # signed ones around, a select per load)
    blocks = tables.shape[1] // 4
    row_width = np.uint64(tables.shape[1])
    flat = tables.reshape(-1)
    inv_support = np.float32(1.0) / support
    inv_sigma2 = np.float32(4.0) / (support * support)
    one, half, zero, inf = np.float32(1.0), np.float32(0.5), np.float32(0.0), np.float32(np.inf)
    chunk = 64  # rays per task: the scratch arrays are allocated once per chunk
    for first in numba.prange((n_rays + chunk - 1) // chunk):
        d_coarse, pick = np.empty(n_coarse, np.float32), np.empty(n_coarse, np.int64)
        near_d, near_i = np.empty(probe, np.float32), np.empty(probe, np.int64)
        prev_near = np.full(probe, -1, np.int64)
        mem_d, mem_i = np.empty(probe * width, np.float32), np.empty(probe * width, np.int64)
        cand_d, cand_i = np.empty(cap, np.float32), np.empty(cap, np.int64)
        knn_d, knn_i = np.empty(k, np.float32), np.empty(k, np.int64)
        w, uk = np.empty(k, np.float32), np.empty((k, 3), np.float32)
        acc, dm, cand_xyz = (
            np.empty(4, np.float32),
            np.empty(max(width, cap), np.float32),
            np.empty((3, cap), np.float32),
        )
        n_prev, n_cand = 0, 0  # the previous ray's probed coarse vertices (prev_near) and shortlist (cand_i)
        for r in range(first * chunk, min(first * chunk + chunk, n_rays)):
            mid = n_samples // 2
            mx, my, mz = x[r, mid, 0], x[r, mid, 1], x[r, mid, 2]
            # level 1: the probe nearest coarse vertices of the middle sample. Neighbouring rays are close:
            # the previous ray's probed vertices bound them (the probe-th nearest is no farther than the
            # farthest of those), and only the vertices within the bound are ranked (picked without branches)
            for c in range(n_coarse):
                dx, dy, dz = mx - coarse_xyz[0, c], my - coarse_xyz[1, c], mz - coarse_xyz[2, c]
                d_coarse[c] = dx * dx + dy * dy + dz * dz
            thr = inf if n_prev < probe else zero
            for p in range(n_prev):
                thr = max(thr, d_coarse[prev_near[p]])
            m = 0
            for c in range(n_coarse):
                pick[m] = c
                m += d_coarse[c] <= thr
            n_near = 0
            for j in range(m):
                n_near = _insert(near_d, near_i, n_near, d_coarse[pick[j]], pick[j])
            # level 2: the ``cap`` nearest members of those (the shortlist). When every vertex of the
            # previous shortlist is a member of them, the farthest of those bounds the cap-th nearest
            thr = inf
            if n_cand == cap:
                covered, far = True, zero
                for j in range(cap):
                    v, hit = cand_i[j], False
                    for p in range(n_near):
                        hit = hit or owner[v] == near_i[p]
                    covered = covered and hit
                    dx, dy, dz = mx - verts[v, 0], my - verts[v, 1], mz - verts[v, 2]
                    far = max(far, dx * dx + dy * dy + dz * dz)
                if covered:
                    thr = far * np.float32(1.0001) + np.float32(1e-12)  # a margin for rounding
            prev_near[:n_near], n_prev = near_i[:n_near], n_near
            for _attempt in range(2):  # within the bound, then (if rounding failed it) all
                m = 0
                for p in range(n_near):
                    g = near_i[p]
                    for j in range(counts[g]):  # the members' coordinates are contiguous: vectorised
                        dx, dy, dz = (
                            mx - member_xyz[0, g, j],
                            my - member_xyz[1, g, j],
                            mz - member_xyz[2, g, j],
                        )
                        dm[j] = dx * dx + dy * dy + dz * dz
                    for j in range(counts[g]):
                        mem_d[m], mem_i[m] = dm[j], members[g, j]
                        m += dm[j] <= thr
                n_cand = 0
                for j in range(m):
                    n_cand = _insert(cand_d, cand_i, n_cand, mem_d[j], mem_i[j])
                if n_cand == cap or thr == inf:
                    break
                thr = inf
            for j in range(n_cand):  # the shortlist's coordinates, contiguous for the samples' distances
                v = cand_i[j]
                cand_xyz[0, j], cand_xyz[1, j], cand_xyz[2, j] = verts[v, 0], verts[v, 1], verts[v, 2]
            for s in range(n_samples):
                # each sample: its k nearest of the shortlist, their normalised distance weights and the
                # sample in each one's local frame (the weighted coordinates are features too)
                o = r * n_samples + s
                px, py, pz = x[r, s, 0], x[r, s, 1], x[r, s, 2]
                n_knn = 0
                for j in range(n_cand):
                    dx, dy, dz = px - cand_xyz[0, j], py - cand_xyz[1, j], pz - cand_xyz[2, j]
                    dm[j] = dx * dx + dy * dy + dz * dz
                for j in range(n_cand):
                    n_knn = _insert(knn_d, knn_i, n_knn, dm[j], cand_i[j])
                total_w = zero
                for j in range(n_knn):
                    w[j] = np.float32(math.exp(-knn_d[j] * inv_sigma2)) + np.float32(1e-6)
                    total_w += w[j]
                cx, cy, cz, nx, ny, nz = zero, zero, zero, zero, zero, zero
                for j in range(n_knn):
                    v = knn_i[j]
                    w[j] /= total_w
                    ex, ey, ez = px - verts[v, 0], py - verts[v, 1], pz - verts[v, 2]
                    q0 = (frames[v, 0, 0] * ex + frames[v, 0, 1] * ey + frames[v, 0, 2] * ez) * inv_support
                    q1 = (frames[v, 1, 0] * ex + frames[v, 1, 1] * ey + frames[v, 1, 2] * ez) * inv_support
                    q2 = (frames[v, 2, 0] * ex + frames[v, 2, 1] * ey + frames[v, 2, 2] * ez) * inv_support
                    cx, cy, cz = cx + w[j] * q0, cy + w[j] * q1, cz + w[j] * q2
                    if with_normals:
                        nx, ny, nz = (
                            nx + w[j] * normals[v, 0],
                            ny + w[j] * normals[v, 1],
                            nz + w[j] * normals[v, 2],
                        )
                    uk[j, 0] = (min(max(q0, -one), one) + one) * half
                    uk[j, 1] = (min(max(q1, -one), one) + one) * half
                    uk[j, 2] = (min(max(q2, -one), one) + one) * half
                out[o, levels * feats] = cx
                out[o, levels * feats + 1] = cy
                out[o, levels * feats + 2] = cz
                if with_normals:
                    out[o, levels * feats + 3] = nx
                    out[o, levels * feats + 4] = ny
                    out[o, levels * feats + 5] = nz
                # per level and block of 4 features: trilinear lookups in the k vertices' merged tables,
                # accumulated and stored once
                for lvl in range(levels):
                    rr = res[lvl]
                    rf = np.float32(rr)  # float32 x int64 is float64 in numba, and so was every weight below
                    for fb in range(blocks):
                        for f in range(4):
                            acc[f] = zero
                        for j in range(n_knn):
                            fx, fy, fz = uk[j, 0] * rf, uk[j, 1] * rf, uk[j, 2] * rf
                            ix, iy, iz = min(int(fx), rr - 1), min(int(fy), rr - 1), min(int(fz), rr - 1)
                            fx, fy, fz = fx - np.float32(ix), fy - np.float32(iy), fz - np.float32(iz)
                            gx, gy, gz = one - fx, one - fy, one - fz
                            # the 8 corners' weights, x, y, z bits from the most significant, and their rows
                            wj = w[j]
                            a00, a01, a10, a11 = wj * gx * gy, wj * gx * fy, wj * fx * gy, wj * fx * fy
                            c0, c1, c2, c3 = a00 * gz, a00 * fz, a01 * gz, a01 * fz
                            c4, c5, c6, c7 = a10 * gz, a10 * fz, a11 * gz, a11 * fz
                            cb = (lvl * cells + ix + rr * (iy + rr * iz)) * 8
                            # the 8 corner rows' first elements in the flat tables: the vertex's level block
                            # plus each corner's offset (``rows`` come multiplied by the row width)
                            vb = np.uint64((knn_i[j] * levels + lvl) * size) * row_width + np.uint64(4 * fb)
                            i0, i1, i2, i3 = (
                                vb + rows[cb],
                                vb + rows[cb + 1],
                                vb + rows[cb + 2],
                                vb + rows[cb + 3],
                            )
                            i4, i5, i6, i7 = (
                                vb + rows[cb + 4],
                                vb + rows[cb + 5],
                                vb + rows[cb + 6],
                                vb + rows[cb + 7],
                            )
                            for f in range(4):
                                uf = np.uint64(f)
                                acc[f] += (
                                    c0 * flat[i0 + uf]
                                    + c1 * flat[i1 + uf]
                                    + c2 * flat[i2 + uf]
                                    + c3 * flat[i3 + uf]
                                    + c4 * flat[i4 + uf]
                                    + c5 * flat[i5 + uf]
                                    + c6 * flat[i6 + uf]
                                    + c7 * flat[i7 + uf]
                                )
                        base, n_f = lvl * feats + 4 * fb, min(4, feats - 4 * fb)
                        for f in range(n_f):
                            out[o, base + f] = acc[f]


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
    normals: torch.Tensor | None = None,
) -> torch.Tensor:
    """The MLP input (R * S, L * F + 3 [+ 3]) of samples ``x`` (R, S, 3) of R rays: the k neighbours'
    blended features from the merged ``tables`` (V, L, T, F), their weighted local coordinates and (given
    ``normals`` (V, 3)) their weighted normals, as ``HashBlendshapeAvatar.features`` computes them.
    ``index`` is the ``KNNIndex``; ``corner_rows`` the model's (L, cells, 8) corner rows. Points ``x``
    (N, 3) are N rays of one sample."""
    x = x[:, None] if x.dim() == 2 else x
    n_rays, n_samples = x.shape[:2]
    levels, feats = tables.shape[1], tables.shape[3]
    kept = index.kept(n_samples, k)
    out = torch.empty(n_rays * n_samples, levels * feats + (3 if normals is None else 6))
    _match_torch_threads()

    def arr(t, dtype=np.float32):
        return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=dtype)

    _features(
        arr(x),
        arr(vertices),
        arr(vertices[index.coarse].T),
        arr(vertices[index.members].permute(2, 0, 1)),  # (3, coarse, width): each group's coordinates
        arr(frames),
        arr(index.members, np.int64),
        arr(index.counts, np.int64),
        arr(index.owner, np.int64),
        # features in blocks of 4 (padded only when they are not: a copy of every table otherwise)
        arr((F.pad(tables, (0, -feats % 4)) if feats % 4 else tables).reshape(-1, feats + -feats % 4)),
        levels,
        tables.shape[2],
        feats,
        arr(corner_rows, np.uint64).reshape(-1) * np.uint64(feats + -feats % 4),  # rows -> elements
        corner_rows.shape[1],
        np.asarray(resolutions, np.int64),
        k,
        index.probe,
        index.probe * index.members.shape[1] if kept is None else kept,
        np.float32(support),
        arr(vertices[:1] if normals is None else normals),  # a placeholder row without normals
        normals is not None,
        out.numpy(),
    )
    return out


@numba.njit(parallel=True, cache=True, nogil=True, error_model="numpy", fastmath=True)
def _merge(tables, blend, out):
    n_verts, n_tables, width = tables.shape
    for v in numba.prange(n_verts):
        w = blend[v, 0]
        for i in range(width):
            out[v, i] = w * tables[v, 0, i]
        for t in range(1, n_tables):
            w = blend[v, t]
            for i in range(width):
                out[v, i] += w * tables[v, t, i]


def merge_tables(tables: torch.Tensor, blend: torch.Tensor) -> torch.Tensor:
    """Each vertex's tables blended by its weights: ``tables`` (V, K, ...) and ``blend`` (V, K) -> (V, ...),
    the product ``genkit.render.avatar.model.blend_tables`` computes with ``torch.bmm``, parallel over the
    vertices (``bench/avatar.py`` times both)."""
    n_verts, n_tables, *rest = tables.shape
    out = torch.empty(n_verts, *rest)
    _match_torch_threads()
    _merge(
        np.ascontiguousarray(tables.detach().numpy(), np.float32).reshape(n_verts, n_tables, -1),
        np.ascontiguousarray(blend.detach().numpy(), np.float32),
        out.numpy().reshape(n_verts, -1),
    )
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _frames(verts, faces, neighbour, out):
    n_verts = verts.shape[0]
    normals = np.zeros((n_verts, 3), np.float32)
    for f in range(faces.shape[0]):  # area-weighted face normals summed at the corners
        a, b, c = faces[f, 0], faces[f, 1], faces[f, 2]
        ux, uy, uz = verts[b, 0] - verts[a, 0], verts[b, 1] - verts[a, 1], verts[b, 2] - verts[a, 2]
        vx, vy, vz = verts[c, 0] - verts[a, 0], verts[c, 1] - verts[a, 1], verts[c, 2] - verts[a, 2]
        nx, ny, nz = uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx
        for i in (a, b, c):
            normals[i, 0] += nx
            normals[i, 1] += ny
            normals[i, 2] += nz
    eps = np.float32(1e-12)
    for v in range(n_verts):
        nx, ny, nz = normals[v, 0], normals[v, 1], normals[v, 2]
        norm = max(math.sqrt(nx * nx + ny * ny + nz * nz), eps)
        nx, ny, nz = nx / norm, ny / norm, nz / norm
        ex, ey, ez = np.float32(0.0), np.float32(0.0), np.float32(0.0)
        if neighbour[v] < n_verts:
            u = neighbour[v]
            ex, ey, ez = verts[u, 0] - verts[v, 0], verts[u, 1] - verts[v, 1], verts[u, 2] - verts[v, 2]
        en = ex * nx + ey * ny + ez * nz
        tx, ty, tz = ex - en * nx, ey - en * ny, ez - en * nz
        norm = max(math.sqrt(tx * tx + ty * ty + tz * tz), eps)
        tx, ty, tz = tx / norm, ty / norm, tz / norm
        out[v, 0, 0], out[v, 0, 1], out[v, 0, 2] = tx, ty, tz
        out[v, 1, 0], out[v, 1, 1], out[v, 1, 2] = ny * tz - nz * ty, nz * tx - nx * tz, nx * ty - ny * tx
        out[v, 2, 0], out[v, 2, 1], out[v, 2, 2] = nx, ny, nz


def vertex_frames(vertices: torch.Tensor, faces: torch.Tensor, neighbour: torch.Tensor) -> torch.Tensor:
    """Local frames (V, 3, 3) of a deformed mesh, rows (tangent, bitangent, normal), as
    ``genkit.render.avatar.model.vertex_frames`` computes them (one loop over the faces, one over the vertices)."""
    out = torch.empty(len(vertices), 3, 3)
    _frames(
        np.ascontiguousarray(vertices.numpy(), np.float32),
        np.ascontiguousarray(faces.numpy(), np.int64),
        np.ascontiguousarray(neighbour.numpy(), np.int64),
        out.numpy(),
    )
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=True)
def _shell(depth, pixels, c2w, focal, size, thickness, origins, dirs, t_starts, t_ends):
    n_samples = t_starts.shape[1]
    step = np.float32(2.0) * thickness / np.float32(n_samples)
    half = np.float32(size) / np.float32(2.0)
    for r in range(len(pixels)):
        p = pixels[r]
        cx = (np.float32(p % size) + np.float32(0.5) - half) / focal
        cy = -(np.float32(p // size) + np.float32(0.5) - half) / focal
        dx = c2w[0, 0] * cx + c2w[0, 1] * cy - c2w[0, 2]
        dy = c2w[1, 0] * cx + c2w[1, 1] * cy - c2w[1, 2]
        dz = c2w[2, 0] * cx + c2w[2, 1] * cy - c2w[2, 2]
        norm = math.sqrt(dx * dx + dy * dy + dz * dz)
        dx, dy, dz = dx / norm, dy / norm, dz / norm
        origins[r, 0], origins[r, 1], origins[r, 2] = c2w[0, 3], c2w[1, 3], c2w[2, 3]
        dirs[r, 0], dirs[r, 1], dirs[r, 2] = dx, dy, dz
        t_hit = depth[p] / -(dx * c2w[0, 2] + dy * c2w[1, 2] + dz * c2w[2, 2])
        for s in range(n_samples):
            t_starts[r, s] = t_hit - thickness + np.float32(s) * step
            t_ends[r, s] = t_starts[r, s] + step


def shell_rays(
    depth: torch.Tensor, c2w: torch.Tensor, focal: float, size: int, num_samples: int, thickness: float
):
    """The unjittered samples of ``genkit.render.avatar.model.shell_samples`` for every covered pixel of a camera
    ``depth`` map (H*W,): pixels (R,), origins and unit directions (R, 3), t_starts and t_ends (R, S)."""
    depth_np = np.ascontiguousarray(depth.numpy(), np.float32)
    pixels = np.flatnonzero(np.isfinite(depth_np))
    n = len(pixels)
    origins, dirs = np.empty((n, 3), np.float32), np.empty((n, 3), np.float32)
    t_starts, t_ends = np.empty((n, num_samples), np.float32), np.empty((n, num_samples), np.float32)
    c2w_np = np.ascontiguousarray(c2w.numpy(), np.float32)
    _shell(
        depth_np,
        pixels,
        c2w_np,
        np.float32(focal),
        size,
        np.float32(thickness),
        origins,
        dirs,
        t_starts,
        t_ends,
    )
    return tuple(torch.from_numpy(a) for a in (pixels, origins, dirs, t_starts, t_ends))


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=True)
def _composite(rgb, sigma, t_starts, t_ends, pixels, background, img, alpha):
    n_samples = t_starts.shape[1]
    for r in range(len(pixels)):
        excl, cr, cg, cb, opacity = 0.0, 0.0, 0.0, 0.0, 0.0  # float64 sums
        for s in range(n_samples):
            i = r * n_samples + s
            sd = sigma[i] * (t_ends[r, s] - t_starts[r, s])
            w = math.exp(-excl) * (1.0 - math.exp(-sd))
            excl += sd
            cr, cg, cb, opacity = cr + w * rgb[i, 0], cg + w * rgb[i, 1], cb + w * rgb[i, 2], opacity + w
        p = pixels[r]
        img[p, 0] = cr + (1.0 - opacity) * background
        img[p, 1] = cg + (1.0 - opacity) * background
        img[p, 2] = cb + (1.0 - opacity) * background
        alpha[p] = opacity


def composite_image(rgb, sigma, t_starts, t_ends, pixels, size: int, background: float = 1.0):
    """``genkit.render.avatar.model.composite`` of the shell's samples, colour (R * S, 3) and density (R * S,),
    written straight into the image (H*W, 3) on ``background`` and its opacity (H*W,)."""
    img = torch.full((size * size, 3), background)
    alpha = torch.zeros(size * size)
    _composite(
        np.ascontiguousarray(rgb.numpy(), np.float32),
        np.ascontiguousarray(sigma.numpy(), np.float32),
        np.ascontiguousarray(t_starts.numpy(), np.float32),
        np.ascontiguousarray(t_ends.numpy(), np.float32),
        np.ascontiguousarray(pixels.numpy(), np.int64),
        float(background),
        img.numpy(),
        alpha.numpy(),
    )
    return img, alpha


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
    correct barycentrics (H*W, 3), depth (H*W,); the loop of ``genkit.render.raster.rasterize``."""
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
