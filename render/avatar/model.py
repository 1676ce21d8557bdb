"""Real-time head avatars from mesh-anchored hash-table blendshapes (Bai et al., CVPR 2024), and the two
baselines it is measured against, in one file.

The avatar (``HashBlendshapeAvatar``):

1. every vertex of the tracked face mesh carries ``num_tables`` small multi-level hash tables;
2. a CNN in UV space maps the expression code to per-vertex blend weights (a softmax over the tables, so
   they sum to one), and the tables are merged linearly into one expression-dependent table per vertex;
3. each ray sample finds its ``k`` nearest deformed vertices with a two-level search (``KNNIndex``: the
   nearest coarse vertices first, then the fine vertices that belong to them; ``knn_brute`` is the
   reference), is expressed in each vertex's local frame (normal, tangent, bitangent), looks up the merged
   tables there and averages the features with distance weights;
4. a small MLP decodes density and colour from those features, the weighted local coordinates and (a
   genkit addition, ``normal_input``) the neighbours' weighted vertex normal in the head frame: the
   surface orientation that expression-dependent shading follows, which the paper leaves to the blend
   weights; samples lie in a thin shell around the mesh (the rasterized front surface plus or minus
   ``thickness``), composited by ``genkit.render.volume``.

Everything a frame needs is explicit: ``model.prepare(expression, pose, vertices)`` returns a ``FrameState``
that ``model.field(x, state, index)`` reads; there is no hidden per-frame state in the modules.

Baselines with the same sampler and compositing: ``GlobalHashBlendshape`` (NeRFBlendShape-style: one hash
grid per expression coefficient in head space, blended by the coefficients, not attached to the mesh) and
``BigMLPAvatar`` (a large MLP on positionally encoded head-space points and the expression code).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from genkit.render.backends import numba_available, use_numba, use_triton
from genkit.render.encodings import PRIMES, HashGridEncoding, trunc_exp
from genkit.render.geometry import camera_rays, euler, vertex_normals
from genkit.render.raster import rasterize
from genkit.render.volume import render_weight_from_density

_CORNERS = torch.tensor([[i >> 2 & 1, i >> 1 & 1, i & 1] for i in range(8)])


def corner_rows(resolution: int, size: int) -> torch.Tensor:
    """Table rows (r^3, 8) of the 8 corners of every cell ``x + r (y + r z)`` of a level with ``resolution``
    r cells per axis in a table of ``size`` rows: dense indexing where the (r + 1)^3 corners fit, Instant-NGP's
    spatial hash above. Corner order: x, y, z bits from the most significant (as the trilinear weights)."""
    r = resolution
    g = torch.arange(r)
    cells = torch.stack(torch.meshgrid(g, g, g, indexing="ij"), -1).flip(-1).reshape(-1, 3)  # x fastest
    x, y, z = (cells[:, None] + _CORNERS[None]).unbind(-1)  # (r^3, 8) each
    if (r + 1) ** 3 <= size:
        return x + (r + 1) * (y + (r + 1) * z)
    h = (x * PRIMES[0]) ^ (y * PRIMES[1]) ^ (z * PRIMES[2])
    return h & (size - 1) if size & (size - 1) == 0 else h % size


class Stages:
    """Per-stage wall-clock seconds (``with stages("mlp"): ...``); ``None`` stages cost nothing."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def __call__(self, name: str):
        return _Stage(self, name)


class _Stage:
    def __init__(self, owner: Stages, name: str):
        self.owner, self.name = owner, name

    def __enter__(self):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.t0 = time.perf_counter()

    def __exit__(self, *exc):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        s = self.owner.seconds
        s[self.name] = s.get(self.name, 0.0) + time.perf_counter() - self.t0


class _NoStage:
    def __call__(self, name):
        return self

    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


NO_STAGES = _NoStage()


# ---------------------------------------------------------------------------------------------- search
def knn_brute(x: torch.Tensor, vertices: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference: distances and indices (N, k) of the ``k`` nearest ``vertices`` (V, 3), nearest first."""
    d, i = torch.cdist(x, vertices).topk(k, dim=1, largest=False)
    return d, i


def farthest_points(points: torch.Tensor, n: int) -> torch.Tensor:
    """Indices of ``n`` farthest-point samples of ``points`` (V, 3), starting from vertex 0."""
    chosen = [0]
    dist = (points - points[0]).norm(dim=-1)
    for _ in range(n - 1):
        chosen.append(int(dist.argmax()))
        dist = torch.minimum(dist, (points - points[chosen[-1]]).norm(dim=-1))
    return torch.tensor(chosen, device=points.device)


class KNNIndex:
    """Two-level nearest-vertex search for a deforming mesh. Built once on the template: ``num_coarse``
    farthest-point vertices (the coarse level), and for each the fine vertices whose nearest coarse vertex
    it is (padded). A query takes the ``probe`` nearest coarse vertices of the deformed mesh, then the
    nearest of their members: exact whenever the true neighbours belong to the probed coarse vertices.

    For the samples of a ray both levels run once per ray, at its middle sample: the coarse level, then
    the ``shortlist`` nearest members, among which each sample finds its own ``k`` nearest (``shortlist``
    None: each sample searches all the members)."""

    def __init__(
        self, template: torch.Tensor, num_coarse: int = 256, probe: int = 4, shortlist: int | None = 12
    ):
        template = template.float()
        self.coarse = farthest_points(template, min(num_coarse, len(template)))
        self.owner = torch.cdist(template, template[self.coarse]).argmin(1)  # (V,): each vertex's group
        groups = [torch.nonzero(self.owner == c).squeeze(1) for c in range(len(self.coarse))]
        width = max(len(g) for g in groups)
        self.members = torch.stack([torch.cat([g, g[:1].expand(width - len(g))]) for g in groups])
        self.counts = torch.tensor([len(g) for g in groups], device=template.device)  # valid members lead
        self.valid = torch.arange(width, device=template.device) < self.counts[:, None]
        self.probe = min(probe, len(self.coarse))
        self.shortlist = shortlist

    def kept(self, samples: int, k: int) -> int | None:
        """How many members a ray keeps for its ``samples`` samples to rank: the shortlist (at least
        ``k``) when it applies, None (all the probed members) for one sample per ray or no shortlist."""
        if self.shortlist is None or samples <= 1 or self.shortlist >= self.probe * self.members.shape[1]:
            return None
        return max(self.shortlist, k)

    def search(self, x: torch.Tensor, vertices: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Distances and indices (N, k) of (approximately) the ``k`` nearest ``vertices`` of points ``x``
        (N, 3), nearest first; for the samples of rays, ``x`` is (R, S, 3)."""
        rays = x if x.dim() == 3 else x[:, None]
        mid = rays[:, rays.shape[1] // 2]
        _, near = torch.cdist(mid, vertices[self.coarse]).topk(self.probe, dim=1, largest=False)
        cand, valid = self.members[near].flatten(1), self.valid[near].flatten(1)  # (R, C)
        if (kept := self.kept(rays.shape[1], k)) is not None:
            d2 = ((mid[:, None] - vertices[cand]) ** 2).sum(-1).masked_fill(~valid, float("inf"))
            cand = cand.gather(1, d2.topk(kept, dim=1, largest=False)[1])
            valid = None
        d2 = ((rays[:, :, None] - vertices[cand][:, None]) ** 2).sum(-1)  # (R, S, C)
        if valid is not None:
            d2 = d2.masked_fill(~valid[:, None], float("inf"))
        d2, j = d2.topk(k, dim=-1, largest=False)
        idx = cand[:, None].expand(-1, rays.shape[1], -1).gather(-1, j)
        return d2.sqrt().reshape(-1, k), idx.reshape(-1, k)


def vertex_frames(
    vertices: torch.Tensor, faces: torch.Tensor, neighbour: torch.Tensor, backend: str = "torch"
) -> torch.Tensor:
    """Local frames (V, 3, 3) of a deformed mesh, rows (tangent, bitangent, normal): the normal from the
    faces, the tangent towards a fixed neighbouring vertex. ``backend``: see ``use_numba``."""
    if use_numba(vertices, backend):
        from genkit.render.kernels.numba_avatar import vertex_frames as numba_frames

        return numba_frames(vertices, faces, neighbour)
    n = vertex_normals(vertices, faces)
    e = vertices[neighbour] - vertices
    t = F.normalize(e - (e * n).sum(-1, keepdim=True) * n, dim=-1)
    return torch.stack([t, torch.cross(n, t, dim=-1), n], dim=1)


def blend_tables(tables: torch.Tensor, blend: torch.Tensor, backend: str = "torch") -> torch.Tensor:
    """Each vertex's K tables (V, K, ...) blended by its weights ``blend`` (V, K) -> (V, ...): the frame's
    merged tables. ``backend``: see ``use_numba``."""
    if use_numba(tables, backend):
        from genkit.render.kernels.numba_avatar import merge_tables

        return merge_tables(tables, blend)
    # (V, 1, K) @ (V, K, L*T*F), slow if ``blend`` were strided
    v, k, *rest = tables.shape
    return torch.bmm(blend[:, None], tables.view(v, k, -1)).view(v, *rest)


def first_neighbours(faces: torch.Tensor, num_vertices: int) -> torch.Tensor:
    """For each vertex, one vertex it shares an edge with (the smallest index)."""
    a = torch.cat([faces[:, 0], faces[:, 1], faces[:, 2], faces[:, 1], faces[:, 2], faces[:, 0]])
    b = torch.cat([faces[:, 1], faces[:, 2], faces[:, 0], faces[:, 0], faces[:, 1], faces[:, 2]])
    out = torch.full((num_vertices,), num_vertices, dtype=torch.long, device=faces.device)
    return out.scatter_reduce(0, a, b, "amin")


def template_uv(template: torch.Tensor) -> torch.Tensor:
    """Spherical UV coordinates (V, 2) in [-1, 1] of a head-like template (about its centroid)."""
    d = F.normalize(template - template.mean(0), dim=-1)
    u = torch.atan2(d[:, 0], d[:, 2]) / math.pi
    v = torch.asin(d[:, 1].clamp(-1, 1)) / (math.pi / 2)
    return torch.stack([u, -v], -1)


# ---------------------------------------------------------------------------------------------- sampling
@dataclass
class Shell:
    """Batched samples of the rays that hit the mesh: ``pixels`` (R,) flat pixel indices, ``origins`` and
    ``directions`` (R, 3), ``t_starts``/``t_ends`` (R, S)."""

    pixels: torch.Tensor
    origins: torch.Tensor
    directions: torch.Tensor
    t_starts: torch.Tensor
    t_ends: torch.Tensor

    def points(self) -> torch.Tensor:
        mid = (self.t_starts + self.t_ends) / 2
        return self.origins[:, None] + self.directions[:, None] * mid[..., None]


def shell_samples(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    c2w: torch.Tensor,
    focal: float,
    size: int,
    num_samples: int,
    thickness: float,
    pixels: torch.Tensor | None = None,
    depth: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    backend: str = "auto",
) -> Shell:
    """Samples in the shell ``[t_hit - thickness, t_hit + thickness]`` around the rasterized front surface
    of the mesh, for the given flat ``pixels`` (default: every pixel the mesh covers). ``depth`` (H*W,) is
    a precomputed camera depth (inf where empty; else ``rasterize`` with ``backend``); ``generator``
    jitters the samples (training). ``backend`` "auto"/"numba" also builds the rays and samples of every
    covered pixel, unjittered, in one numba loop."""
    if depth is None:
        depth = rasterize(vertices, faces, c2w, focal, size, backend)[2].reshape(-1)
    if pixels is None and generator is None and use_numba(vertices, backend):
        from genkit.render.kernels.numba_avatar import shell_rays

        return Shell(*shell_rays(depth, c2w, focal, size, num_samples, thickness))
    if pixels is None:
        pixels = torch.nonzero(torch.isfinite(depth)).squeeze(1)
    else:
        pixels = pixels[torch.isfinite(depth[pixels])]
    xy = torch.stack([pixels % size, torch.div(pixels, size, rounding_mode="floor")], -1)
    origins, dirs = camera_rays(c2w, focal, size, size, xy)
    t_hit = depth[pixels] / -(dirs @ c2w[:3, 2])  # camera depth -> distance along the unit ray
    edges = torch.linspace(-thickness, thickness, num_samples + 1, device=depth.device)
    step = 2 * thickness / num_samples
    # the generator may be a CPU one for samples on another device
    jitter = 0.5 if generator is None else torch.rand(len(pixels), 1, generator=generator).to(depth.device)
    t0 = t_hit[:, None] + edges[None, :-1] + (jitter - 0.5) * step
    return Shell(pixels, origins, dirs, t0, t0 + step)


def composite(rgb: torch.Tensor, sigma: torch.Tensor, shell: Shell, background: float = 1.0):
    """Volume rendering of the shell's samples, colour (R * S, 3) and density (R * S,): colour (R, 3) of
    its rays on ``background`` and opacity (R,)."""
    s = shell.t_starts.shape
    w, _, _ = render_weight_from_density(shell.t_starts, shell.t_ends, sigma.view(s))
    opacity = w.sum(-1)
    return (w[..., None] * rgb.view(*s, 3)).sum(1) + (1 - opacity[:, None]) * background, opacity


# ---------------------------------------------------------------------------------------------- models
@dataclass
class FrameState:
    """What one frame of the avatar needs: deformed vertices (V, 3) and their local frames (V, 3, 3),
    the pose rotation (3, 3), the model's expression-dependent parameters (``tables`` or ``code``) and
    the vertex normals (V, 3) the avatar's MLP reads (``normals``, in its ``normal_input`` frame)."""

    vertices: torch.Tensor
    frames: torch.Tensor
    rotation: torch.Tensor
    tables: torch.Tensor | None = None
    code: torch.Tensor | None = None
    normals: torch.Tensor | None = None


def pose_rotation(pose: torch.Tensor) -> torch.Tensor:
    """(yaw, pitch, roll) -> R (3, 3) with world = R @ head: ``genkit.render.geometry.euler``."""
    return torch.from_numpy(euler(pose)).to(pose.device)


def small_mlp(d_in: int, hidden: int) -> nn.Sequential:
    """The lightweight decoder: two ``hidden``-wide ReLU layers -> (density logit, RGB logits). The ReLUs
    work in place (one pass less over each activation; the linear layers' gradients need only inputs)."""
    relu = nn.ReLU(inplace=True)
    return nn.Sequential(nn.Linear(d_in, hidden), relu, nn.Linear(hidden, hidden), relu, nn.Linear(hidden, 4))


def decode(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw outputs (N, 4) -> colour (N, 3) in [0, 1] and density (N,), as every avatar model decodes them."""
    # the sigmoid of the whole contiguous block, then its colour columns (faster than of strided columns)
    return torch.sigmoid(out)[:, 1:], trunc_exp(out[:, 0] + 1.0)


class _AvatarBase(ModelMixin, ConfigMixin):
    """Shared checks and the mesh buffers (template, faces) every avatar model carries. ``render_chunk``:
    the rays per field call that ``render_frame`` uses by default, the fastest on the CPU
    (``bench/avatar.py`` times the big MLP at several)."""

    render_chunk = 4096

    def _init_mesh(self, num_vertices: int, num_faces: int):
        self.register_buffer("template", torch.zeros(num_vertices, 3))
        self.register_buffer("faces", torch.zeros(num_faces, 3, dtype=torch.long))

    def set_mesh(self, template: torch.Tensor, faces: torch.Tensor) -> None:
        if template.shape != self.template.shape or faces.shape != self.faces.shape:
            raise ValueError(
                f"mesh has {len(template)} vertices and {len(faces)} faces; the model was made for "
                f"{len(self.template)} and {len(self.faces)}"
            )
        self.template.copy_(template)
        self.faces.copy_(faces)

    def mesh_index(self) -> tuple[KNNIndex, torch.Tensor]:
        """What rendering needs besides a frame, built from the mesh: the two-level k-NN index and each
        vertex's tangent neighbour."""
        return KNNIndex(self.template), first_neighbours(self.faces, len(self.template))

    def check_inputs(self, expression: torch.Tensor, vertices: torch.Tensor) -> None:
        from genkit.utils import GenkitError

        e = self.config.num_expressions
        if expression.shape[-1] != e:
            raise GenkitError(f"expression vector has {expression.shape[-1]} values; this avatar takes {e}")
        if vertices.shape != self.template.shape:
            raise GenkitError(
                f"mesh has {vertices.shape[0]} vertices; this avatar was trained on {self.template.shape[0]}"
            )

    def shade(
        self,
        state: FrameState,
        index,
        shell: Shell,
        stages=NO_STAGES,
        backend: str = "auto",
        chunk: int | None = None,
    ):
        """Colour (R * S, 3) and density (R * S,) of the shell's samples (``backend``: see the model's
        ``field``), the field evaluated ``chunk`` rays at a time (None: all at once), which bounds the
        memory of large frames and keeps a chunk's activations in the CPU's cache from layer to layer."""
        x = shell.points()
        parts = [self.field(xs, state, index, stages, backend) for xs in x.split(chunk or len(x))]
        return tuple(torch.cat(p) for p in zip(*parts, strict=True)) if len(parts) > 1 else parts[0]

    def render(
        self,
        state: FrameState,
        index,
        shell: Shell,
        stages=NO_STAGES,
        backend: str = "auto",
        chunk: int | None = None,
    ):
        """Colour (R, 3) and opacity (R,) of the shell's rays: ``shade`` and ``composite``."""
        rgb, sigma = self.shade(state, index, shell, stages, backend, chunk)
        with stages("composite"):
            return composite(rgb, sigma, shell)


class HashBlendshapeAvatar(_AvatarBase):
    """Mesh-anchored hash-table blendshapes: ``num_tables`` tables of ``table_size`` rows and ``features``
    columns per vertex and level (``resolutions``: the local grid of each level, dense where it fits,
    hashed above), blended per vertex by a UV-space CNN of the expression; ``k`` nearest vertices per
    sample within ``support`` (the local frame's scale). ``normal_input``: the frame of the vertex normals
    the MLP also reads, "head" (light that moves with the head: expression changes the shading, as in
    the procedural head), "world" (light fixed in the scene: pose changes it too; ``genkit avatar train
    --normal-input auto`` picks the one the data's light needs) or "none" (the paper's MLP input: table
    features and local coordinates only; the class default, which a config without the key loads as).
    ``pose_input``: the CNN also reads the head pose (yaw, pitch, roll) after the expression, so the blend
    weights may change with it (off by default)."""

    NORMAL_INPUTS = ("head", "world", "none")

    @register_to_config
    def __init__(
        self,
        num_vertices: int = 2562,
        num_faces: int = 5120,
        num_expressions: int = 12,
        num_tables: int = 3,
        table_size: int = 64,
        features: int = 4,
        resolutions: tuple[int, ...] = (3, 7),
        k: int = 4,
        support: float = 0.15,
        hidden: int = 64,
        uv_size: int = 32,
        cnn_width: int = 16,
        normal_input: str = "none",
        pose_input: bool = False,
    ):
        super().__init__()
        if normal_input not in self.NORMAL_INPUTS:
            raise ValueError(f"normal_input must be one of {self.NORMAL_INPUTS}, got {normal_input!r}")
        self._init_mesh(num_vertices, num_faces)
        levels = len(resolutions)
        rows = [corner_rows(r, table_size) for r in resolutions]  # fixed by the config: not saved
        padded = torch.zeros(levels, max(len(r) for r in rows), 8, dtype=torch.long)
        for lvl, r in enumerate(rows):
            padded[lvl, : len(r)] = r
        self.register_buffer("corner_rows", padded, persistent=False)  # (levels, cells, 8)
        # the same layout for the Triton lookup (``genkit.render.kernels.triton_hashgrid``)
        dense = [(r + 1) ** 3 <= table_size for r in resolutions]
        self.register_buffer("_res", torch.tensor(resolutions, dtype=torch.int32), persistent=False)
        self.register_buffer("_dense", torch.tensor(dense, dtype=torch.int32), persistent=False)
        self.tables = nn.Parameter(
            torch.empty(num_vertices, num_tables, levels, table_size, features).uniform_(-1e-2, 1e-2)
        )
        side = uv_size // 8
        self.cnn_in = nn.Linear(num_expressions + (3 if pose_input else 0), cnn_width * side * side)
        self.cnn = nn.Sequential(
            *[
                m
                for _ in range(3)
                for m in (
                    nn.Upsample(scale_factor=2),
                    nn.Conv2d(cnn_width, cnn_width, 3, padding=1),
                    nn.SiLU(),
                )
            ],
            nn.Conv2d(cnn_width, num_tables, 3, padding=1),
        )
        self.mlp = small_mlp(levels * features + (3 if normal_input == "none" else 6), hidden)

    def blend_weights(self, expression: torch.Tensor, pose: torch.Tensor | None = None) -> torch.Tensor:
        """Per-vertex blend weights (V, num_tables), non-negative and summing to one, of the expression
        (E,) and, with ``pose_input``, the pose (3,)."""
        c = self.config
        if c.pose_input:
            if pose is None:
                raise ValueError("this avatar's blend weights depend on the pose (pose_input): pass it")
            expression = torch.cat([expression, pose.to(expression.dtype)])
        side = c.uv_size // 8
        uv_map = self.cnn(self.cnn_in(expression).view(1, c.cnn_width, side, side))  # (1, K, uv, uv)
        uv = template_uv(self.template)[None, None]  # (1, 1, V, 2)
        w = F.grid_sample(uv_map, uv, align_corners=False, padding_mode="border")[0, :, 0]  # (K, V)
        return w.softmax(0).T.contiguous()  # over K while (K, V) is contiguous: rows of 3 are slow

    def prepare(self, expression, pose, vertices, neighbour, stages=NO_STAGES, backend="auto") -> FrameState:
        """The frame's merged tables, vertex frames (``backend`` of both: see ``use_numba``) and the normals
        the MLP reads."""
        self.check_inputs(expression, vertices)
        with stages("cnn"):
            blend = self.blend_weights(expression, pose)
        with stages("gather"):
            tables = blend_tables(self.tables, blend, backend)
        with stages("search"):
            frames = vertex_frames(vertices, self.faces, neighbour, backend)
        rotation, normals = pose_rotation(pose), None
        if self.config.normal_input != "none":  # the frames' third rows; R^T n (rows: n R) in the head frame
            normals = frames[:, 2] @ rotation if self.config.normal_input == "head" else frames[:, 2]
        return FrameState(vertices, frames, rotation, tables=tables, normals=normals)

    def lookup(
        self,
        tables: torch.Tensor,
        vid: torch.Tensor,
        u: torch.Tensor,
        weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Trilinear lookups of points ``u`` (N, k, 3) in [0, 1] in the merged tables (V, L, T, F) of
        vertices ``vid`` (N, k), summed over the k neighbours with ``weights`` (N, k) -> (N, L * F); with
        ``vid`` (N,) and ``u`` (N, 3), one lookup per point. The 8 corner rows of every cell come from a
        precomputed table (``corner_rows[level]``), the corner weights from broadcasting; one ``embedding_bag``
        call gathers and weights all k x 8 rows of a sample and level."""
        _, levels, size, feats = tables.shape
        if vid.dim() == 1:
            vid, u = vid[:, None], u[:, None]
        n, k = vid.shape
        rows, wts = [], []
        for lvl, r in enumerate(self.config.resolutions):
            pos = u * r
            cell = pos.floor().clamp(0, r - 1)
            frac = pos - cell
            c = cell.long()
            rows.append(
                self.corner_rows[lvl][c[..., 0] + r * (c[..., 1] + r * c[..., 2])]
                + ((vid * levels + lvl) * size)[..., None]
            )  # (N, k, 8)
            fx, fy, fz = (torch.stack([1 - f, f], -1) for f in frac.unbind(-1))  # (N, k, 2) each
            w8 = (fx[..., :, None, None] * fy[..., None, :, None] * fz[..., None, None, :]).flatten(-3)
            wts.append(w8 if weights is None else w8 * weights[..., None])
        rows = torch.stack(rows, 1).reshape(n * levels, k * 8)
        wts = torch.stack(wts, 1).reshape(n * levels, k * 8)
        out = F.embedding_bag(rows, tables.reshape(-1, feats), per_sample_weights=wts, mode="sum")
        return out.view(n, levels * feats)

    def lookup_triton(self, tables, vid, u, weights) -> torch.Tensor:
        """``lookup`` of k neighbours per sample with the neural fields' Triton hash-grid kernel (compiled on
        CUDA; on the CPU under ``TRITON_INTERPRET=1``, for tests). Gradients reach the tables only: the
        positions and weights come from the mesh, which the avatar does not optimise."""
        from genkit.render.kernels.triton_hashgrid import hashgrid_triton_per_point

        if not self.triton_fits(tables, u, weights):
            raise ValueError("the Triton lookup takes power-of-two tables and no gradient to u or weights")
        return hashgrid_triton_per_point(u, tables, self._res, self._dense, vid, weights).to(tables.dtype)

    @staticmethod
    def triton_fits(tables, u, weights) -> bool:
        """Whether ``lookup_triton`` applies: its hash takes power-of-two tables, its gradients no u or
        weights (else the torch ``lookup``)."""
        size = tables.shape[2]
        return size & (size - 1) == 0 and not (u.requires_grad or weights.requires_grad)

    def features(self, x, state: FrameState, index: KNNIndex, stages=NO_STAGES, backend: str = "auto"):
        """The MLP input (N, L * F + 3 [+ 3]) of samples ``x`` (R, S, 3) or (N, 3): the k nearest vertices'
        table features blended by distance weights, the weighted local coordinates and (``state.normals``
        not None) the weighted vertex normals. ``backend``: "torch"
        (the reference, differentiable), "numba" (the fused CPU kernel of
        ``genkit.render.kernels.numba_avatar``, inference only), "triton" (the torch search, the table
        lookups in Triton) or "auto" (numba for CPU tensors without gradients, triton on CUDA, torch
        otherwise)."""
        c = self.config
        if use_numba(x, backend):
            from genkit.render.kernels.numba_avatar import avatar_features

            with stages("search+gather"):
                return avatar_features(
                    x,
                    state.vertices,
                    state.frames,
                    state.tables,
                    self.corner_rows,
                    c.resolutions,
                    index,
                    c.k,
                    c.support,
                    state.normals,
                )
        with stages("search"):
            d, nn_ = index.search(x, state.vertices, c.k)  # (N, k)
            x = x.reshape(-1, 3)
            q = torch.einsum("nkij,nkj->nki", state.frames[nn_], x[:, None] - state.vertices[nn_]) / c.support
            w = torch.exp(-((d / (0.5 * c.support)) ** 2)) + 1e-6
            w = w / w.sum(1, keepdim=True)
        with stages("gather"):
            u = (q.clamp(-1, 1) + 1) / 2
            # "triton" raises where the kernel does not fit; "auto" then falls back to torch
            if use_triton(x.device, backend) and (
                backend == "triton" or self.triton_fits(state.tables, u, w)
            ):
                feats = self.lookup_triton(state.tables, nn_, u, w)
            else:
                feats = self.lookup(state.tables, nn_, u, w)
            out = [feats, (w[..., None] * q).sum(1)]
            if state.normals is not None:
                out.append((w[..., None] * state.normals[nn_]).sum(1))
            return torch.cat(out, -1)

    def field(self, x, state: FrameState, index: KNNIndex, stages=NO_STAGES, backend: str = "auto"):
        h = self.features(x, state, index, stages, backend)
        with stages("mlp"):
            return self.decoder(h)

    def decoder(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The lightweight MLP on the features: colour (N, 3) and density (N,)."""
        return decode(self.mlp(h))


class GlobalHashBlendshape(_AvatarBase):
    """NeRFBlendShape-style baseline: ``num_expressions + 1`` hash grids over head space (the pose removed),
    blended by (1, expression) into one grid per frame, decoded by the same small MLP."""

    @register_to_config
    def __init__(
        self,
        num_vertices: int = 2562,
        num_faces: int = 5120,
        num_expressions: int = 12,
        levels: int = 8,
        log2_table_size: int = 13,
        features: int = 2,
        max_resolution: int = 256,
        hidden: int = 64,
        extent: float = 1.4,
    ):
        super().__init__()
        self._init_mesh(num_vertices, num_faces)
        self.encoding = HashGridEncoding(
            levels, features, log2_table_size, 16, max_resolution, backend="torch"
        )
        self.tables = nn.Parameter(
            torch.empty(num_expressions + 1, *self.encoding.tables.shape).uniform_(-1e-4, 1e-4)
        )
        del self.encoding.tables
        self.mlp = small_mlp(levels * features, hidden)

    def prepare(
        self, expression, pose, vertices, neighbour=None, stages=NO_STAGES, backend="auto"
    ) -> FrameState:
        self.check_inputs(expression, vertices)
        with stages("gather"):
            coef = torch.cat([expression.new_ones(1), expression])
            tables = torch.einsum("e,elts->lts", coef, self.tables)
        return FrameState(vertices, None, pose_rotation(pose), tables=tables)

    def field(self, x, state: FrameState, index=None, stages=NO_STAGES, backend: str = "torch"):
        with stages("gather"):
            head = x.reshape(-1, 3) @ state.rotation  # R^T x: head space
            feats = self.encoding.lookup((head / self.config.extent + 1) / 2, state.tables)
        with stages("mlp"):
            out = self.mlp(feats)
        return decode(out)


class BigMLPAvatar(_AvatarBase):
    """Dynamic-NeRF baseline: a ``depth`` x ``width`` MLP on positionally encoded head-space points and the
    expression code (with a skip connection halfway), as in expression-conditioned NeRF avatars. It runs
    512 rays (2048 samples at 4 per ray) at a time: its 256-wide activations then stay in the L2 cache."""

    render_chunk = 512

    @register_to_config
    def __init__(
        self,
        num_vertices: int = 2562,
        num_faces: int = 5120,
        num_expressions: int = 12,
        frequencies: int = 8,
        width: int = 256,
        depth: int = 8,
    ):
        super().__init__()
        self._init_mesh(num_vertices, num_faces)
        d_in = 3 + 6 * frequencies + num_expressions
        self.layers = nn.ModuleList(
            [
                nn.Linear(d_in if i == 0 else width + (d_in if i == depth // 2 else 0), width)
                for i in range(depth)
            ]
        )
        self.out = nn.Linear(width, 4)

    def prepare(
        self, expression, pose, vertices, neighbour=None, stages=NO_STAGES, backend="auto"
    ) -> FrameState:
        self.check_inputs(expression, vertices)
        return FrameState(vertices, None, pose_rotation(pose), code=expression)

    def field(self, x, state: FrameState, index=None, stages=NO_STAGES, backend: str = "torch"):
        with stages("mlp"):
            x = x.reshape(-1, 3)
            head = x @ state.rotation
            freqs = 2.0 ** torch.arange(self.config.frequencies, dtype=x.dtype, device=x.device) * math.pi
            ang = head[..., None] * freqs  # (N, 3, L)
            enc = torch.cat(
                [head, ang.sin().flatten(1), ang.cos().flatten(1), state.code.expand(len(x), -1)], -1
            )
            h = enc
            for i, layer in enumerate(self.layers):
                h = layer(torch.cat([h, enc], -1) if i == len(self.layers) // 2 and i > 0 else h).relu_()
            out = self.out(h)
        return decode(out)


def compile_field(model: _AvatarBase, backend: str = "auto") -> _AvatarBase:
    """``model`` with its per-sample code compiled by ``torch.compile`` (dynamic shapes: the number of rays
    changes every frame). With ``backend`` "auto", the avatar on the CPU with numba installed keeps the
    fused numba kernel for the search and gather and compiles its MLP; otherwise (and with "torch") the
    whole torch field is compiled: inductor fuses the search, gather and MLP into C++/OpenMP loops on the
    CPU and Triton kernels on CUDA. The first frame compiles (seconds to tens of seconds); render with
    ``stages=NO_STAGES`` (per-stage timers would split the compiled graph)."""
    if backend not in ("auto", "torch"):
        raise ValueError(f"backend must be 'auto' or 'torch', got {backend!r}")
    numba_cpu = model.device.type == "cpu" and numba_available()
    if isinstance(model, HashBlendshapeAvatar) and backend == "auto" and numba_cpu:
        model.decoder = torch.compile(model.decoder, dynamic=True)
        return model
    field = model.field

    def torch_field(x, state, index, stages=NO_STAGES, backend="torch"):
        return field(x, state, index, stages, "torch")

    model.field = torch.compile(torch_field, dynamic=True)
    return model


MODELS = {"avatar": HashBlendshapeAvatar, "global_hash": GlobalHashBlendshape, "big_mlp": BigMLPAvatar}


@torch.no_grad()
def render_frame(
    model: _AvatarBase,
    expression: torch.Tensor,
    pose: torch.Tensor,
    vertices: torch.Tensor,
    c2w: torch.Tensor,
    focal: float,
    size: int,
    index: KNNIndex,
    neighbour: torch.Tensor,
    num_samples: int = 8,
    thickness: float = 0.04,
    stages=NO_STAGES,
    backend: str = "auto",
    chunk: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One image (H, W, 3) in [0, 1] on white and its opacity (H, W). ``backend`` picks the code of the
    shell (rasterizer, rays and samples) and the compositing (every model) and of the avatar's per-frame
    and per-sample work (vertex frames, ``HashBlendshapeAvatar.features``; the baselines' fields are torch
    only); the field runs ``chunk`` rays at a time (``shade``; default: the model's ``render_chunk``)."""
    state = model.prepare(expression, pose, vertices, neighbour, stages, backend)
    with stages("shell"):
        shell = shell_samples(
            vertices, model.faces, c2w, focal, size, num_samples, thickness, backend=backend
        )
    rgb, sigma = model.shade(state, index, shell, stages, backend, chunk or model.render_chunk)
    with stages("composite"):
        if use_numba(rgb, backend):
            from genkit.render.kernels.numba_avatar import composite_image

            img, alpha = composite_image(rgb, sigma, shell.t_starts, shell.t_ends, shell.pixels, size)
        else:
            colour, opacity = composite(rgb, sigma, shell)
            img, alpha = colour.new_ones(size * size, 3), colour.new_zeros(size * size)
            img[shell.pixels], alpha[shell.pixels] = colour, opacity
    return img.view(size, size, 3), alpha.view(size, size)
