"""Procedural 3-D objects (genkit.data.objects3d): exact geometry, views and captions."""

import math

import pytest
import torch

from genkit.data.objects3d import (
    MARKER,
    SHAPES3D,
    Object3D,
    Objects3DDataset,
    objects,
    occupancy,
    render_pool,
    render_views,
    sdf,
    view_word,
)
from genkit.utils import GenkitError


def test_splits_and_captions():
    train, held = objects("train"), objects("heldout")
    assert len(train) + len(held) == len(objects("all")) == 25 and len(held) == 3
    assert {o.shape for o in train} == set(SHAPES3D)  # every word is seen in training
    assert Object3D("red", "cube").caption("front") == "front view of a red cube"
    assert Object3D("red", "cube").caption("front", color=False) == "front view of a cube"
    assert Object3D("red", "cube").caption(color=False) == "a cube"
    assert [view_word(a, 10) for a in (0, 30, 90, 180, 200, 270, 350)] == [
        "front",
        "front",
        "side",
        "back",
        "back",
        "side",
        "front",
    ]
    assert view_word(180, 70) == "overhead"
    with pytest.raises(ValueError):
        objects("nope")


def test_sdf_is_exact_on_simple_points():
    p = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    d, _ = sdf("sphere", p, marker=False)
    torch.testing.assert_close(d, torch.tensor([-0.6, 0.4, 0.4]))
    d, _ = sdf("cylinder", p, marker=False)
    torch.testing.assert_close(d, torch.tensor([-0.5, 0.5, 0.5]))
    d, _ = sdf("torus", torch.tensor([[0.45, 0.0, 0.0], [0.0, 0.0, 0.0]]), marker=False)
    torch.testing.assert_close(d, torch.tensor([-0.18, 0.27]))
    # the cone: on its base disc, at its apex, and far below
    d, _ = sdf("cone", torch.tensor([[0.0, -0.5, 0.0], [0.0, 0.6, 0.0], [0.0, -1.5, 0.0]]), marker=False)
    torch.testing.assert_close(d, torch.tensor([0.0, 0.0, 1.0]), atol=1e-5, rtol=0)


def test_occupancy_volume_matches_the_analytic_volume():
    g = torch.Generator().manual_seed(0)
    p = torch.rand(200_000, 3, generator=g) * 2 - 1  # the cube [-1, 1]^3, volume 8
    inside = occupancy("sphere", p).float().mean() * 8
    sphere = 4 / 3 * math.pi * 0.6**3 + 4 / 3 * math.pi * 0.16**3 * 0.5  # plus about half the marker
    assert float(inside) == pytest.approx(sphere, rel=0.03)
    torus = 2 * math.pi**2 * 0.45 * 0.18**2
    assert float((~sdf("torus", p, marker=False)[0].gt(0)).float().mean() * 8) == pytest.approx(
        torus, rel=0.05
    )


def test_render_marker_visible_from_the_front_only_and_silhouettes():
    out = render_views(Object3D("yellow", "cube"), [0, 180, 90], [0, 0, 0], resolution=32)
    img, sil = out["image"], out["silhouette"]
    assert img.shape == (3, 3, 32, 32) and sil.shape == (3, 1, 32, 32)
    dark = (img.amax(1) < MARKER + 0.05).float().sum((1, 2))  # marker pixels (black, shaded)
    assert dark[0] > 4 and dark[1] == 0
    # a cube of side 1 at distance 3 (focal 1.6 x side): about (1.6 / 2.5)^2 of the image from the front
    assert 0.3 < float(sil[0].mean()) < 0.5
    assert torch.equal(img, render_views(Object3D("yellow", "cube"), [0, 180, 90], [0, 0, 0], 32)["image"])
    # torus from the front: a ring (hole in the middle); from the side: a thin bar
    t = render_views(Object3D("blue", "torus"), [0, 90], [0, 0], resolution=32)["silhouette"]
    assert float(t[0, 0, 16, 16]) == 0 and float(t[0].mean()) > 1.7 * float(t[1].mean())


def test_marker_coverage_and_pool_labels():
    out = render_views(Object3D("red", "sphere"), [0, 90, 180], [10, 10, 10], resolution=32)
    px = out["marker"].sum((1, 2, 3))
    assert px[0] > 8 and px[2] == 0 and px[0] > px[1]
    assert torch.all(out["marker"] <= out["silhouette"] + 1e-6)
    pool = render_pool(6, resolution=16, seed=1, split="all", progress=False)
    assert len(pool["objects"]) == 6 and pool["marker_pixels"].shape == (6,)
    first = Objects3DDataset(6, resolution=16, seed=1, split="all").item_view(0)
    assert pool["objects"][0] == first[0]


def test_objects3d_classifier_trains_and_reads_views(tmp_path, capsys):
    from genkit.cli import main
    from genkit.metrics.objects3d import (
        attribute_accuracy,
        color_read,
        janus_rate,
        load_objects3d_classifier,
    )

    out = tmp_path / "clf"
    args = ["train", "objects3d-classifier", "--out", str(out), "--max-train-steps", "60"]
    assert main([*args, "--batch-size", "32", "--pool-size", "400", "--checkpointing-steps", "30"]) == 0
    assert f"wrote {out / 'model'}" in capsys.readouterr().out
    clf = load_objects3d_classifier(str(out / "model"))
    assert list(clf.heads) == ["shape", "color", "marker"]
    obj = Object3D("blue", "cylinder")
    views = render_views(obj, list(range(0, 360, 30)), [20] * 12, 32)["image"]
    pred = clf.predict(views * 2 - 1)  # cylinder and blue are class 2 of SHAPES3D and COLORS3D
    both = ((pred["shape"] == 2) & (pred["color"] == 2)).float().mean()
    assert attribute_accuracy(clf, views, obj) == pytest.approx(float(both))
    shape_only = (pred["shape"] == 2).float().mean()
    assert attribute_accuracy(clf, views, obj, color=False) == pytest.approx(float(shape_only))
    assert (pred["color"] == 2).float().mean() > 0.5  # 60 steps read colour (chance 0.2)
    assert color_read(clf, views) == "blue"  # the colour of most views

    def exact(cams):
        r = render_views(obj, cams[:, 0].tolist(), cams[:, 1].tolist(), 32)
        return r["image"], r["silhouette"]

    assert 0.0 <= janus_rate(exact, shows_marker=clf.shows_marker) <= 1.0
    with pytest.raises(GenkitError, match="could not load the 3-D views' classifier"):
        load_objects3d_classifier(str(tmp_path / "nothing"))


def test_dataset_is_seeded_and_captions_the_view():
    ds = Objects3DDataset(8, resolution=16, seed=3, split="heldout")
    a, b = ds[5], Objects3DDataset(8, resolution=16, seed=3, split="heldout")[5]
    assert torch.equal(a["pixel_values"], b["pixel_values"]) and a["caption"] == b["caption"]
    az, el = a["camera"].tolist()
    assert a["caption"] == f"{view_word(az, el)} view of a {a['color']} {a['shape']}"
    assert (a["color"], a["shape"]) in {(o.color, o.shape) for o in objects("heldout")}
    assert a["pixel_values"].min() >= -1 and a["pixel_values"].max() <= 1


def test_3d_metrics_on_the_exact_object_and_on_a_janus_object():
    from genkit.metrics.objects3d import diversity, janus_rate, marker_visible, silhouette_iou, volume_iou

    cube = Object3D("yellow", "cube")

    def exact(cams, obj=cube):
        out = render_views(obj, cams[:, 0].tolist(), cams[:, 1].tolist(), 32)
        return out["image"], out["silhouette"]

    cams = torch.tensor([[30.0, 10.0], [200.0, 40.0]])
    assert silhouette_iou(exact, cube, cams) == 1.0
    assert silhouette_iou(lambda c: exact(c, Object3D("yellow", "sphere")), cube, cams) < 0.9
    assert volume_iou(lambda p: (-sdf("cube", p)[0]).clamp_min(0) * 100, cube, 0.0, 32) > 0.97
    assert volume_iou(lambda p: (-sdf("sphere", p)[0]) * 100, cube, 0.0, 32) < 0.8
    assert janus_rate(exact) == 0.0
    # a Janus object: the front view pasted onto the back views
    front = exact(torch.tensor([[0.0, 10.0]]))
    assert (
        janus_rate(lambda c: (front[0].expand(len(c), -1, -1, -1), front[1].expand(len(c), -1, -1, -1)))
        == 1.0
    )
    img, sil = exact(torch.tensor([[0.0, 10.0], [180.0, 10.0]]))
    assert marker_visible(img, sil).tolist() == [True, False]
    # dark speckles (a young field's noise) are not a marker; a dark blob is
    g = torch.Generator().manual_seed(0)
    speckled = torch.where(torch.rand(1, 1, 32, 32, generator=g) < 0.15, 0.0, img[1:])
    assert marker_visible(speckled, sil[1:]).tolist() == [False]
    blob = img[1:].clone()
    blob[..., 14:17, 14:17] = 0.0
    assert marker_visible(blob, sil[1:]).tolist() == [True]
    assert janus_rate(exact, shows_marker=lambda i, o: torch.ones(len(i), dtype=torch.bool)) == 1.0
    assert diversity([img, img]) == 0.0 and diversity([img, img.flip(0)]) > 0.05


def test_bundled_objects3d_classifier_reads_fresh_views():
    from genkit.data.objects3d import COLORS3D
    from genkit.metrics.objects3d import MARKER_PIXELS, load_objects3d_classifier

    clf = load_objects3d_classifier()
    pool = render_pool(96, 32, seed=31337, split="all", progress=False)
    pred = clf.predict(pool["pixel_values"])
    shape = torch.tensor([SHAPES3D.index(o.shape) for o in pool["objects"]])
    colour = torch.tensor([list(COLORS3D).index(o.color) for o in pool["objects"]])
    marker = (pool["marker_pixels"] >= MARKER_PIXELS).long()
    assert (pred["shape"] == shape).float().mean() >= 0.95
    assert (pred["color"] == colour).float().mean() >= 0.95
    assert (pred["marker"] == marker).float().mean() >= 0.9
