"""Head avatars: the procedural head and its rasterizer, the two-level k-NN search, the hash-blendshape
avatar and its baselines, training, rendering, the shipped avatar, the CLI and its bad inputs."""

import json

import numpy as np
import pytest
import torch

from genkit.cli import main
from genkit.loading import bundled_path
from genkit.metrics.image import psnr
from genkit.render.avatar import (
    EXPRESSIONS,
    MODELS,
    NO_STAGES,
    AvatarTrainConfig,
    HashBlendshapeAvatar,
    KNNIndex,
    ProceduralHead,
    compile_field,
    knn_brute,
    load_avatar,
    load_head_split,
    make_head_dataset,
    render_frame,
    shell_samples,
    train_avatar,
)
from genkit.render.avatar.model import blend_tables, corner_rows, first_neighbours
from genkit.render.encodings import PRIMES
from genkit.render.geometry import look_at, vertex_normals
from genkit.render.raster import rasterize
from genkit.utils import GenkitError


@pytest.fixture(scope="module")
def head():
    return ProceduralHead.build()


@pytest.fixture(scope="module")
def head_data(tmp_path_factory):
    return make_head_dataset(tmp_path_factory.mktemp("head") / "data", size=32, frames=8)


def frame(head, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    e = (rng.random(len(EXPRESSIONS)) * scale).astype(np.float32)
    pose = np.array([0.2, 0.05, 0.0], dtype=np.float32)
    return torch.from_numpy(e), torch.from_numpy(pose), torch.from_numpy(head.vertices(e, pose))


def small_model(head):
    m = HashBlendshapeAvatar(num_vertices=len(head.template), num_faces=len(head.faces), normal_input="head")
    m.set_mesh(torch.from_numpy(head.template), torch.from_numpy(head.faces).long())
    return m.eval()


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_rasterizer_covers_a_triangle_exactly(backend):
    if backend == "numba":
        pytest.importorskip("numba")
    # a right triangle in the z=0 plane seen from z=1 with focal = size: pixel coordinates = x * size + size/2
    size = 16
    verts = torch.tensor([[-0.25, 0.25, 0.0], [-0.25, -0.25, 0.0], [0.25, 0.25, 0.0]])
    face, bary, depth = rasterize(
        verts, torch.tensor([[0, 1, 2]]), torch.from_numpy(look_at((0, 0, 1))), 16.0, size, backend
    )
    covered = face >= 0
    # pixel centres (i + 0.5) inside x in [4, 12], y in [4, 12], below the diagonal x + y <= 16
    ii, jj = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    expected = (jj >= 4) & (ii >= 4) & (jj + ii <= 16)
    assert torch.equal(covered, expected)
    assert torch.allclose(depth[covered], torch.ones(int(covered.sum())))
    assert torch.allclose(bary[covered].sum(-1), torch.ones(int(covered.sum())), atol=1e-5)


def test_numba_rasterizer_matches_torch(head):
    pytest.importorskip("numba")
    faces = torch.from_numpy(head.faces).long()
    for seed, size, eye in ((0, 48, (0, 0, 3.2)), (1, 96, (1.5, 0.5, 2.6))):
        _, _, v = frame(head, seed)
        c2w = torch.from_numpy(look_at(eye))
        ref = rasterize(v, faces, c2w, 1.35 * size, size, "torch")
        got = rasterize(v, faces, c2w, 1.35 * size, size, "numba")
        assert (ref[0] >= 0).float().mean() > 0.2
        assert torch.equal(got[0], ref[0])  # same faces, same ties
        assert torch.allclose(got[1], ref[1], atol=1e-5) and torch.allclose(got[2], ref[2], atol=1e-5)
        # the shell's rays and samples built from the depth map
        a, b = (
            shell_samples(v, faces, c2w, 1.35 * size, size, 4, 0.04, backend=k) for k in ("torch", "numba")
        )
        assert torch.equal(a.pixels, b.pixels) and len(a.pixels) == int((ref[0] >= 0).sum())
        for name in ("origins", "directions", "t_starts", "t_ends"):
            assert torch.allclose(getattr(b, name), getattr(a, name), atol=1e-5), name
    with pytest.raises(ValueError, match="backend must be"):
        rasterize(v, faces, c2w, 10.0, 8, "cuda")


def test_expressions_move_their_regions(head):
    neutral = head.vertices(np.zeros(len(EXPRESSIONS)))
    assert np.allclose(neutral, head.template)
    for i, name in enumerate(EXPRESSIONS):
        moved = np.linalg.norm(head.vertices(np.eye(len(EXPRESSIONS))[i]) - neutral, axis=1)
        assert moved.max() > 0.02, name  # every expression does something
        assert (moved > 0.01).mean() < 0.35, name  # and stays local
    with pytest.raises(GenkitError, match="12 values"):
        head.vertices(np.zeros(5))


def test_blend_weights_sum_to_one(head):
    m = small_model(head)
    w = m.blend_weights(torch.rand(len(EXPRESSIONS)))
    assert w.shape == (len(head.template), m.config.num_tables)
    assert w.is_contiguous()  # prepare's batched blend of the tables is slow on a strided one
    assert (w >= 0).all() and torch.allclose(w.sum(-1), torch.ones(len(w)), atol=1e-6)
    assert not torch.allclose(w, m.blend_weights(torch.zeros(len(EXPRESSIONS))))  # depends on the expression


def test_pose_input_of_the_blend_weights(head):
    """With ``pose_input`` the CNN reads (expression, pose) and the weights follow the pose; without it
    (the default) the pose is ignored."""
    e, pose, v = frame(head)
    plain = small_model(head)
    assert plain.cnn_in.in_features == len(EXPRESSIONS)
    assert torch.equal(plain.blend_weights(e, pose), plain.blend_weights(e))
    m = HashBlendshapeAvatar(num_vertices=len(head.template), num_faces=len(head.faces), pose_input=True)
    m.set_mesh(torch.from_numpy(head.template), torch.from_numpy(head.faces).long())
    assert m.cnn_in.in_features == len(EXPRESSIONS) + 3
    w = m.blend_weights(e, pose)
    assert (w >= 0).all() and torch.allclose(w.sum(-1), torch.ones(len(w)), atol=1e-6)
    assert not torch.allclose(w, m.blend_weights(e, torch.zeros(3)), atol=1e-5)
    nb = first_neighbours(m.faces, len(m.template))
    with torch.no_grad():
        state = m.prepare(e, pose, v, nb, backend="torch")
    assert torch.allclose(state.tables, blend_tables(m.tables, w), atol=1e-6)
    with pytest.raises(ValueError, match="pose"):
        m.blend_weights(e)


def test_normal_input_frames(head):
    """The normals the MLP reads: the unposed mesh's vertex normals ("head": the pose removed), the posed
    mesh's ("world"), none for the paper's input; a bad choice is refused."""
    e, pose, v = frame(head)  # posed: yaw 0.2, pitch 0.05
    faces = torch.from_numpy(head.faces).long()
    unposed = vertex_normals(torch.from_numpy(head.vertices(e.numpy())), faces)
    nb = first_neighbours(faces, len(head.template))
    states = {}
    for normal_input in ("head", "world", "none"):
        m = table_model(head, 4, (3, 7), normal_input)
        with torch.no_grad():
            states[normal_input] = m.prepare(e, pose, v, nb, backend="torch")
        assert m.mlp[0].in_features == 2 * 4 + (3 if normal_input == "none" else 6)
    assert torch.allclose(states["head"].normals, unposed, atol=1e-5)
    assert torch.allclose(states["world"].normals, vertex_normals(v, faces), atol=1e-5)
    assert not torch.allclose(states["head"].normals, states["world"].normals, atol=1e-2)
    assert states["none"].normals is None
    with pytest.raises(ValueError, match="normal_input"):
        HashBlendshapeAvatar(normal_input="camera")


def test_lookup_interpolates_a_linear_function_exactly(head):
    m = small_model(head)
    r0 = m.config.resolutions[0]  # the dense level: row = x + (r+1)(y + (r+1) z)
    g = (
        torch.stack(torch.meshgrid(*[torch.arange(r0 + 1.0)] * 3, indexing="ij"), -1)
        .permute(2, 1, 0, 3)
        .reshape(-1, 3)
    )
    tables = torch.zeros(
        len(head.template), len(m.config.resolutions), m.config.table_size, m.config.features
    )
    tables[:, 0, : len(g), 0] = g @ torch.tensor([1.0, -2.0, 0.5])
    u = torch.rand(100, 3)
    vid = torch.randint(0, len(head.template), (100,))
    out = m.lookup(tables, vid, u)
    assert torch.allclose(out[:, 0], (u * r0) @ torch.tensor([1.0, -2.0, 0.5]), atol=1e-5)


def test_lookup_sums_neighbours_with_their_weights(head):
    m = small_model(head)
    tables = torch.randn(len(head.template), len(m.config.resolutions), m.config.table_size, 4)
    vid = torch.randint(0, len(head.template), (50, 3))
    u, w = torch.rand(50, 3, 3), torch.rand(50, 3)
    one_by_one = torch.stack([m.lookup(tables, vid[:, j], u[:, j]) for j in range(3)], 1)
    assert torch.allclose(m.lookup(tables, vid, u, w), (w[..., None] * one_by_one).sum(1), atol=1e-5)


def test_corner_rows_dense_and_hashed():
    dense = corner_rows(3, 64)  # (3 + 1)^3 = 64 corners fit: row = x + 4 (y + 4 z)
    assert dense.shape == (27, 8) and torch.equal(dense[0], torch.tensor([0, 16, 4, 20, 1, 17, 5, 21]))
    hashed = corner_rows(7, 64)  # cell x + 7 (y + 7 z) = (1, 2, 3): corners hashed with Instant-NGP's primes
    cell = 1 + 7 * (2 + 7 * 3)
    x, y, z = 1 + 1, 2 + 0, 3 + 1  # corner 5 = bits (1, 0, 1)
    assert int(hashed[cell, 5]) == (x * PRIMES[0] ^ y * PRIMES[1] ^ z * PRIMES[2]) & 63
    assert int(hashed.max()) < 64


def test_two_level_knn_agrees_with_brute_force(head):
    e, pose, v = frame(head)
    faces = torch.from_numpy(head.faces).long()
    index = KNNIndex(torch.from_numpy(head.template))
    shell = shell_samples(v, faces, torch.from_numpy(look_at((0, 0, 3.2))), 64 * 1.35, 64, 8, 0.04)
    x = shell.points()
    d_ref, ref = knn_brute(x.reshape(-1, 3), v, 4)
    d, got = index.search(x, v, 4)
    recall = (ref[:, :, None] == got[:, None, :]).any(-1).float().mean()
    assert recall >= 0.99
    assert (d >= d_ref - 1e-4).all()  # never closer than the true neighbours (up to cdist rounding)
    # the per-ray shortlist loses next to nothing against every sample searching all the members
    _, full = KNNIndex(torch.from_numpy(head.template), shortlist=None).search(x, v, 4)
    full_recall = (ref[:, :, None] == full[:, None, :]).any(-1).float().mean()
    assert recall >= full_recall - 0.005
    # on the vertices themselves the search is exact
    d0, i0 = index.search(v[:200], v, 1)
    assert torch.equal(i0[:, 0], torch.arange(200)) and torch.allclose(d0, torch.zeros_like(d0), atol=1e-3)


@pytest.mark.parametrize("shortlist,samples", [(12, 4), (None, 4), (12, 1)])
def test_numba_kernel_matches_the_torch_features(head, shortlist, samples):
    pytest.importorskip("numba")
    torch.manual_seed(0)
    e, pose, v = frame(head)
    m = small_model(head)
    with torch.no_grad():
        m.tables.normal_()  # features of order one, not the initial 1e-2
    index = KNNIndex(m.template, shortlist=shortlist)
    nb = first_neighbours(m.faces, len(m.template))
    c2w = torch.from_numpy(look_at((0.6, 0.2, 3.0)))
    shell = shell_samples(v, m.faces, c2w, 48 * 1.35, 48, samples, 0.04)
    with torch.no_grad():
        state = m.prepare(e, pose, v, nb, backend="torch")
        fast = m.prepare(e, pose, v, nb, backend="numba")
        ref = m.features(shell.points(), state, index, backend="torch")
        got = m.features(shell.points(), state, index, backend="numba")
        img_ref, alpha_ref = render_frame(m, e, pose, v, c2w, 32 * 1.35, 32, index, nb, backend="torch")
        img, alpha = render_frame(m, e, pose, v, c2w, 32 * 1.35, 32, index, nb, backend="numba")
    assert got.shape == ref.shape == (len(shell.pixels) * samples, 2 * 4 + 6)
    assert ref[:, :8].abs().mean() > 0.1  # table features, not zeros
    # the last 3: the neighbours' weighted normals in the head frame, nearly unit where neighbours agree
    norm = ref[:, -3:].norm(dim=1)
    assert norm.mean() > 0.95 and norm.min() > 0.3 and norm.max() < 1 + 1e-5
    assert torch.allclose(fast.frames, state.frames, atol=1e-5)  # the numba vertex frames
    assert torch.allclose(fast.tables, state.tables, atol=1e-5)  # and merged tables
    assert state.tables.abs().mean() > 0.1
    assert torch.allclose(got, ref, atol=1e-4)
    assert torch.allclose(img, img_ref, atol=1e-4) and torch.allclose(alpha, alpha_ref, atol=1e-4)
    assert alpha.max() > 0.1 and (alpha == 0).any()  # some opacity, on a background
    flat = shell.points()[:, 0]  # (N, 3): one sample per ray
    with torch.no_grad():
        ref1 = m.features(flat, state, index, backend="torch")
        assert torch.allclose(m.features(flat, state, index, backend="numba"), ref1, atol=1e-4)
    with torch.enable_grad():
        m.features(shell.points(), state, index)  # auto: gradients wanted -> the torch code
    with pytest.raises(ValueError, match="backend must be"):
        m.features(shell.points(), state, index, backend="cuda")


def table_model(head, features, resolutions, normal_input="head"):
    """An avatar of the head with other table shapes, its tables of order one (not the initial 1e-2)."""
    m = HashBlendshapeAvatar(
        num_vertices=len(head.template),
        num_faces=len(head.faces),
        features=features,
        resolutions=resolutions,
        normal_input=normal_input,
    )
    m.set_mesh(torch.from_numpy(head.template), torch.from_numpy(head.faces).long())
    with torch.no_grad():
        m.tables.normal_()
    return m


@pytest.mark.parametrize("features,resolutions,normal_input", [(2, (3, 7), "none"), (6, (2, 5, 9), "world")])
def test_numba_kernel_any_table_shape(head, features, resolutions, normal_input):
    """The kernel keeps features in registers in blocks of 4: other widths (padded) and level counts;
    without normals and with world-frame normals."""
    pytest.importorskip("numba")
    torch.manual_seed(0)
    e, pose, v = frame(head)
    m = table_model(head, features, resolutions, normal_input)
    index, nb = m.mesh_index()
    shell = shell_samples(v, m.faces, torch.from_numpy(look_at((0.3, 0.1, 3.0))), 40 * 1.35, 40, 4, 0.04)
    with torch.no_grad():
        state = m.prepare(e, pose, v, nb)
        ref = m.features(shell.points(), state, index, backend="torch")
        got = m.features(shell.points(), state, index, backend="numba")
    extra = 3 if normal_input == "none" else 6
    assert got.shape == (len(shell.pixels) * 4, len(resolutions) * features + extra)
    assert ref[:, len(resolutions) * features - 1].abs().mean() > 0.1
    assert torch.allclose(got, ref, atol=1e-4)


def test_triton_lookup_matches_the_torch_features(head):
    """The GPU path's table lookups (the neural fields' Triton hash-grid kernel with per-point tables; on
    the CPU under its interpreter, slow: few samples): features, table gradients and a rendered frame as
    the torch code's, with an odd feature count and dense and hashed levels."""
    pytest.importorskip("triton")
    torch.manual_seed(0)
    e, pose, v = frame(head)
    features, resolutions = 3, (2, 5, 9)
    m = table_model(head, features, resolutions)
    index, nb = m.mesh_index()
    c2w = torch.from_numpy(look_at((0.3, 0.1, 3.0)))
    x = shell_samples(v, m.faces, c2w, 24 * 1.35, 24, 4, 0.04).points()[::4]
    grads, feats = {}, {}
    for backend in ("torch", "triton"):
        state = m.prepare(e, pose, v, nb, backend="torch")  # merged tables: differentiable
        feats[backend] = m.features(x, state, index, backend=backend)
        g = torch.linspace(-1, 1, feats[backend].numel()).view_as(feats[backend])
        (grads[backend],) = torch.autograd.grad((feats[backend] * g).sum(), m.tables)
    ref = feats["torch"]
    assert ref.shape == (x.shape[0] * 4, len(resolutions) * features + 6) and ref[:, 0].abs().mean() > 0.1
    assert torch.allclose(feats["triton"], ref, atol=1e-4)
    assert grads["torch"].abs().max() > 0.1 and torch.allclose(grads["triton"], grads["torch"], atol=1e-4)
    with torch.no_grad():
        img_ref, _ = render_frame(m.eval(), e, pose, v, c2w, 8 * 1.35, 8, index, nb, 2, backend="torch")
        img, _ = render_frame(m, e, pose, v, c2w, 8 * 1.35, 8, index, nb, 2, backend="triton")
    assert torch.allclose(img, img_ref, atol=1e-4) and (img_ref < 0.99).any()


def test_shell_samples_straddle_the_surface(head):
    _, _, v = frame(head)
    faces = torch.from_numpy(head.faces).long()
    c2w = torch.from_numpy(look_at((0, 0, 3.2)))
    shell = shell_samples(v, faces, c2w, 32 * 1.35, 32, 4, 0.05)
    mid = (shell.t_starts[:, 0] + shell.t_ends[:, -1]) / 2  # the surface hit along each ray
    hit = shell.origins + shell.directions * mid[:, None]
    d, _ = knn_brute(hit, v, 1)
    assert d.max() < 0.08  # on the mesh (within a vertex spacing)
    assert torch.allclose(shell.t_ends[:, -1] - shell.t_starts[:, 0], torch.full((len(mid),), 0.1), atol=1e-5)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_render_is_deterministic_and_round_trips(name, head, tmp_path):
    e, pose, v = frame(head)
    m = MODELS[name]()
    m.set_mesh(torch.from_numpy(head.template), torch.from_numpy(head.faces).long())
    m.eval()
    index, nb = KNNIndex(m.template), first_neighbours(m.faces, len(m.template))
    c2w = torch.from_numpy(look_at((0, 0, 3.2)))
    a, alpha = render_frame(m, e, pose, v, c2w, 32 * 1.35, 32, index, nb)
    b, _ = render_frame(m, e, pose, v, c2w, 32 * 1.35, 32, index, nb)
    assert a.shape == (32, 32, 3) and torch.equal(a, b)
    assert (alpha[0, 0] == 0) and torch.equal(a[0, 0], torch.ones(3))  # the corner is background
    chunked, _ = render_frame(m, e, pose, v, c2w, 32 * 1.35, 32, index, nb, chunk=50)  # 50 rays at a time
    assert torch.allclose(chunked, a, atol=1e-5)
    m.save_pretrained(tmp_path / name)
    m2 = MODELS[name].from_pretrained(tmp_path / name).eval()
    c, _ = render_frame(m2, e, pose, v, c2w, 32 * 1.35, 32, index, nb)
    assert torch.equal(a, c)


def test_bad_inputs_rejected(head, head_data, tmp_path):
    m = small_model(head)
    e, pose, v = frame(head)
    index, nb = KNNIndex(m.template), first_neighbours(m.faces, len(m.template))
    c2w = torch.from_numpy(look_at((0, 0, 3.2)))
    with pytest.raises(GenkitError, match="expression vector has 5 values"):
        render_frame(m, e[:5], pose, v, c2w, 40.0, 32, index, nb)
    with pytest.raises(GenkitError, match="mesh has 100 vertices"):
        render_frame(m, e, pose, v[:100], c2w, 40.0, 32, index, nb)
    with pytest.raises(GenkitError, match="not a head dataset"):
        load_head_split(tmp_path, "train")
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in ("meta.json", "faces.npy", "template.npy"):
        (broken / f).write_bytes((head_data / f).read_bytes())
    with pytest.raises(GenkitError, match="missing"):
        load_head_split(broken, "train")
    z = dict(np.load(head_data / "train.npz"))
    np.savez(broken / "train.npz", **{**z, "images": z["images"][:-1]})
    with pytest.raises(GenkitError, match="do not all have"):
        load_head_split(broken, "train")
    (broken / "train.npz").write_text("not an archive")
    with pytest.raises(GenkitError, match="cannot read the head dataset"):
        load_head_split(broken, "train")
    with pytest.raises(GenkitError, match="required"):
        AvatarTrainConfig()
    with pytest.raises(GenkitError, match="--normal-input"):
        AvatarTrainConfig(data=str(head_data), normal_input="camera")


def test_unreadable_expression_files_are_clear_errors(tmp_path):
    from genkit.render.avatar import read_expressions

    writers = {
        "objects.npy": lambda p: np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True),
        "text.npz": lambda p: p.write_text("not an archive"),
        "ragged.json": lambda p: p.write_text("[[1, 2], [3]]"),
        "broken.json": lambda p: p.write_text("{not json"),
    }
    for name, write in writers.items():
        write(tmp_path / name)
        with pytest.raises(GenkitError, match="cannot read expressions from"):
            read_expressions(str(tmp_path / name), 12)
    e = np.zeros((3, 12), np.float32)
    for arrays, message in (
        ({"pose": np.zeros((2, 3))}, r"pose is \(2, 3\); expected \(3, 3\)"),
        ({"pose": np.full((3, 3), np.nan)}, "NaN or inf in pose"),
        ({"vertices": np.full((3, 5, 3), np.inf)}, "NaN or inf in vertices"),
    ):
        np.savez(tmp_path / "codes.npz", expressions=e, **arrays)
        with pytest.raises(GenkitError, match=message):
            read_expressions(str(tmp_path / "codes.npz"), 12)
    (tmp_path / "one.json").write_text(json.dumps([0.5] * 12))  # one frame, no pose: the rest pose
    expr, pose, verts = read_expressions(str(tmp_path / "one.json"), 12)
    assert expr.shape == (1, 12) and pose.shape == (1, 3) and not pose.any() and verts is None


def test_broken_avatar_checkpoints_are_clear_errors(tmp_path):
    import shutil

    for name, damage in (
        ("weights", lambda d: (d / "diffusion_pytorch_model.safetensors").write_bytes(b"\0" * 100)),
        ("config", lambda d: (d / "config.json").write_text("{")),
        ("meta", lambda d: (d / "avatar.json").write_text("{")),
    ):
        d = tmp_path / name
        shutil.copytree(bundled_path("avatar-head"), d)
        damage(d)
        with pytest.raises(GenkitError, match="could not load the avatar from"):
            load_avatar(d)


def test_checkpoint_from_before_the_input_options_loads_as_trained(head, tmp_path):
    """An avatar saved before ``normal_input`` and ``pose_input`` existed (no keys in its config) keeps
    its 11-input MLP and its expression-only CNN."""
    m = table_model(head, 4, (3, 7), "none")
    m.save_pretrained(tmp_path, safe_serialization=True)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["normal_input"], config["pose_input"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "avatar.json").write_text(json.dumps({"model": "avatar"}))
    loaded, _ = load_avatar(tmp_path)
    assert loaded.config.normal_input == "none" and loaded.mlp[0].in_features == 2 * 4 + 3
    assert not loaded.config.pose_input and loaded.cnn_in.in_features == len(EXPRESSIONS)
    assert torch.equal(loaded.mlp[0].weight, m.mlp[0].weight)


def test_fifty_steps_lower_the_loss_and_resume(head_data, tmp_path):
    cfg = AvatarTrainConfig(
        data=str(head_data),
        out=str(tmp_path / "run"),
        max_train_steps=50,
        rays_per_step=256,
        frames_per_step=2,
        checkpointing_steps=25,
        eval_frames=2,
    )
    model = train_avatar(cfg)
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    curve = [c["train_psnr"] for c in report["curve"]]
    assert np.mean(curve[-2:]) > curve[0] + 3  # PSNR up by several dB: the loss went down
    assert set(report["psnr"]) == {"test_expr", "test_extreme", "test_view"}
    assert (tmp_path / "run" / "checkpoints" / "checkpoint-50").is_dir()
    net, meta = load_avatar(model)
    assert meta["model"] == "avatar" and net.config.num_vertices == 2562
    # a longer run resumes from step 50 instead of starting again
    cfg.max_train_steps = 52
    train_avatar(cfg)
    report2 = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report2["curve"][0]["step"] == 51
    # another architecture in the same folder: a clear error, not a state-dict traceback
    cfg.normal_input, cfg.max_train_steps = "none", 54
    with pytest.raises(GenkitError, match="cannot resume .* another model configuration .*mlp.0.weight"):
        train_avatar(cfg)


def test_light_fixed_in_the_world_follows_the_pose(head, tmp_path):
    """``light="world"``: the same frame as "head" without pose; with pose the same mask and vertices but
    other shading."""
    from genkit.render.avatar import render_ground_truth

    e, c2w = np.full(len(EXPRESSIONS), 0.3, dtype=np.float32), look_at((0, 0, 3.2))
    for pose, same in ((np.zeros(3, np.float32), True), (np.array([0.3, 0.1, 0.0], np.float32), False)):
        (a, ma, va), (b, mb, vb) = (
            render_ground_truth(head, e, pose, c2w, 40.0, 32, light) for light in ("head", "world")
        )
        assert np.array_equal(ma, mb) and np.array_equal(va, vb)
        assert np.allclose(a, b, atol=1e-6) == same
        if not same:
            assert np.abs(a - b)[ma].max() > 0.05
    with pytest.raises(GenkitError, match="--light must be one of head, world"):
        make_head_dataset(tmp_path / "x", size=32, frames=2, light="sun")
    assert not (tmp_path / "x").exists()


def test_shipped_avatar_renders_the_procedural_head():

    model, meta = load_avatar(bundled_path("avatar-head"))
    head = ProceduralHead.build()
    assert model.config.num_vertices == len(head.template)
    from genkit.render.avatar import render_ground_truth

    e = np.full(len(EXPRESSIONS), 0.3, dtype=np.float32)
    pose = np.zeros(3, dtype=np.float32)
    c2w = look_at((0, 0, 3.2))
    gt, mask, v = render_ground_truth(head, e, pose, c2w, 64 * 1.35, 64)
    index, nb = KNNIndex(model.template), first_neighbours(model.faces, len(model.template))
    img, _ = render_frame(
        model,
        torch.from_numpy(e),
        torch.from_numpy(pose),
        torch.from_numpy(v),
        torch.from_numpy(c2w),
        64 * 1.35,
        64,
        index,
        nb,
    )
    assert psnr(img, torch.from_numpy(gt), torch.from_numpy(mask)) > 30  # 33.9 dB with the shipped avatar


def test_cli_data_train_render(tmp_path, capsys, monkeypatch):
    data, run = tmp_path / "data", tmp_path / "run"
    argv = ["avatar", "data", "--out", str(data), "--size", "24", "--frames", "4", "--light", "world"]
    assert main(argv) == 0
    assert json.loads((data / "meta.json").read_text())["light"] == "world"
    assert (
        main(
            [
                "avatar",
                "train",
                "--data",
                str(data),
                "--out",
                str(run),
                "--pose-input",
                "--max-train-steps",
                "2",
                "--rays-per-step",
                "64",
                "--frames-per-step",
                "1",
                "--eval-frames",
                "1",
            ]
        )
        == 0
    )
    trained, _ = load_avatar(run)  # --normal-input auto: the frame of the light the data recorded
    assert trained.config.normal_input == "world" and trained.config.pose_input
    out = tmp_path / "demo.gif"
    assert (
        main(
            [
                "avatar",
                "render",
                "--checkpoint",
                str(run),
                "--demo",
                "--frames",
                "3",
                "--size",
                "24",
                "--out",
                str(out),
                "--backend",
                "torch",
            ]
        )
        == 0
    )
    assert "frames per second" in capsys.readouterr().out and out.is_file()
    codes = tmp_path / "codes.npy"
    np.save(codes, np.zeros((2, 5), dtype=np.float32))
    capsys.readouterr()
    rc = main(
        [
            "avatar",
            "render",
            "--checkpoint",
            str(run),
            "--expressions",
            str(codes),
            "--out",
            str(tmp_path / "x.mp4"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "5 values; this avatar takes 12" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.mp4").exists()
    rc = main(["avatar", "train", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "r2")])
    assert rc == 2 and "not a head dataset" in capsys.readouterr().err
    render = ["avatar", "render", "--checkpoint", str(run), "--demo", "--out", str(tmp_path / "y.gif")]
    bad = [
        (["--device", "gpu0"], "is not a device"),
        (["--device", "meta", "--backend", "numba"], "on the CPU"),
    ]
    if not torch.cuda.is_available():
        monkeypatch.delenv("TRITON_INTERPRET", raising=False)  # the tests' CPU interpreter of Triton
        bad += [
            (["--device", "cuda"], "no CUDA GPU"),
            (["--device", "cpu", "--backend", "triton"], "CUDA GPU"),
        ]
    for args, message in bad:
        rc = main(render + args)
        err = capsys.readouterr().err
        assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, (args, err)
    assert not (tmp_path / "y.gif").exists()


@pytest.mark.slow
def test_compiled_field_matches_eager(head):
    e, pose, v = frame(head)
    m = small_model(head)
    index, nb = m.mesh_index()
    c2w = torch.from_numpy(look_at((0, 0, 3.2)))
    eager, _ = render_frame(m, e, pose, v, c2w, 32 * 1.35, 32, index, nb, backend="torch")
    for backend in ("auto", "torch"):  # the compiled MLP after the numba kernel; the whole torch field
        c = compile_field(small_model(head), backend)
        c.load_state_dict(m.state_dict())
        compiled, _ = render_frame(c, e, pose, v, c2w, 32 * 1.35, 32, index, nb, stages=NO_STAGES)
        assert torch.allclose(eager, compiled, atol=1e-4), backend


def _own_mesh_dataset(root, size=32, frames=(6, 2)):
    """A capture of another face model in genkit's open format, as FLAME tracking would fill it: a
    162-vertex ellipsoid with 5 smooth blendshapes (not the procedural head) and vertex colours."""
    import trimesh

    from genkit.render.geometry import euler

    sphere = trimesh.creation.icosphere(subdivisions=2)
    template = (sphere.vertices * [0.8, 1.0, 0.9]).astype(np.float32)
    faces = sphere.faces.astype(np.int64)
    normals = sphere.vertex_normals.astype(np.float32)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 3))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    shapes = np.exp(-((sphere.vertices[None] - centres[:, None]) ** 2).sum(-1) / 0.3)[..., None] * normals
    colour = (0.5 + 0.4 * np.sin(3 * template)).astype(np.float32)
    root.mkdir()
    np.save(root / "faces.npy", faces)
    np.save(root / "template.npy", template)
    c2w = look_at((0.0, 0.0, 3.2))
    meta = {"size": size, "focal": 1.35 * size, "splits": {}}
    for split, n in zip(("train", "test_expr"), frames, strict=True):
        expr = rng.random((n, 5)).astype(np.float32) * 0.3
        pose = (rng.random((n, 3)).astype(np.float32) - 0.5) * 0.2
        rec = {"expressions": expr, "pose": pose, "vertices": [], "c2w": [], "images": [], "masks": []}
        for e, p in zip(expr, pose, strict=True):
            v = ((template + np.einsum("s,svc->vc", e, shapes)) @ euler(p).T).astype(np.float32)
            face, bary, _ = rasterize(
                torch.from_numpy(v), torch.from_numpy(faces), torch.from_numpy(c2w), meta["focal"], size
            )
            mask = (face >= 0).numpy()
            img = (
                torch.from_numpy(colour)[torch.from_numpy(faces)[face.clamp(min=0)]] * bary[..., None]
            ).sum(-2)
            img = np.where(mask[..., None], img.numpy(), 1.0)
            for k, x in (
                ("vertices", v),
                ("c2w", c2w),
                ("images", (img * 255).round().astype(np.uint8)),
                ("masks", mask),
            ):
                rec[k].append(x)
        np.savez(
            root / f"{split}.npz", **{k: np.stack(x) if isinstance(x, list) else x for k, x in rec.items()}
        )
        meta["splits"][split] = n
    (root / "meta.json").write_text(json.dumps(meta))
    return rec


def test_a_capture_of_another_face_model_trains_and_renders(tmp_path, capsys):
    """Nothing is tied to the procedural head: another mesh (162 vertices, fewer than the search's 256
    coarse vertices) and 5 expressions train through the CLI and render from an .npz with vertices."""
    data, run = tmp_path / "data", tmp_path / "run"
    held = _own_mesh_dataset(data)
    train = ["avatar", "train", "--data", str(data), "--out", str(run), "--max-train-steps", "3"]
    assert main([*train, "--rays-per-step", "64", "--frames-per-step", "1", "--eval-frames", "1"]) == 0
    model, _ = load_avatar(run)
    assert model.config.num_vertices == 162 and model.config.num_expressions == 5
    codes = tmp_path / "codes.npz"
    np.savez(codes, expressions=held["expressions"], pose=held["pose"], vertices=np.stack(held["vertices"]))
    out = tmp_path / "own.gif"
    render = ["avatar", "render", "--checkpoint", str(run), "--size", "32", "--out", str(out)]
    capsys.readouterr()
    assert main([*render, "--expressions", str(codes)]) == 0 and out.is_file()
    assert "frames per second" in capsys.readouterr().out
    # without meshes there is nothing to pose: the procedural head's are not this avatar's
    assert main([*render, "--demo"]) == 2
    assert "not of genkit's procedural head" in capsys.readouterr().err
