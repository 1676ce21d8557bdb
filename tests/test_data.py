import numpy as np
import pytest
import torch

from genkit.data.shapes import (
    BACKGROUNDS,
    COLORS,
    HELDOUT_PAIRS,
    ShapesDataset,
    combinations,
    parse_caption,
    prompt_set,
    render,
    sample_attributes,
    shapes_stream,
)


def test_splits_partition_combinations():
    train, held, every = combinations("train"), combinations("heldout"), combinations("all")
    assert len(every) == 200 and len(train) == 160 and len(held) == 40
    assert set(train).isdisjoint(held) and set(train) | set(held) == set(every)
    assert all((a.color, a.shape) in HELDOUT_PAIRS for a in held)
    # every word still appears in training
    assert {a.color for a in train} == set(COLORS) and {a.shape for a in train} == {a.shape for a in every}


def test_caption_round_trip_and_grammar():
    for a in combinations("all"):
        assert parse_caption(a.caption()) == a
    assert parse_caption("A Small RED circle at the top left.").color == "red"
    assert combinations("all")[0].caption() == "a small red circle at the top left"
    with pytest.raises(ValueError, match="not in the shapes grammar"):
        parse_caption("a photo of a cat")


def test_render_colours_at_shape_centre_and_background_in_corner():
    attrs = {
        "size": np.array([1]),
        "color": np.array([0]),
        "shape": np.array([0]),
        "position": np.array([4]),
        "background": np.array([3]),
        "offset": np.zeros((1, 2)),
        "scale": np.ones(1),
    }
    img = render(attrs, 32)[0]  # large red circle in the center on black
    assert torch.allclose(img[:, 16, 16], torch.tensor(COLORS["red"]) / 255.0)
    assert torch.allclose(img[:, 0, 0], torch.full((3,), BACKGROUNDS[3] / 255.0))
    # a large circle of radius 0.21 * 32 ~ 6.7 px covers ~ pi r^2 ~ 141 px
    covered = (img[0] > 0.5).sum().item()
    assert 120 < covered < 165


def test_dataset_is_seeded_and_split_respected():
    a, b = ShapesDataset(16, seed=3), ShapesDataset(16, seed=3)
    assert torch.equal(a[5]["pixel_values"], b[5]["pixel_values"]) and a[5]["caption"] == b[5]["caption"]
    assert not torch.equal(
        ShapesDataset(16, seed=4).batch(range(16))["pixel_values"], a.batch(range(16))["pixel_values"]
    )
    held = ShapesDataset(64, seed=0, split="heldout")
    assert all(parse_caption(held[i]["caption"]).heldout for i in range(64))
    item = a[0]
    assert (
        item["pixel_values"].shape == (3, 32, 32)
        and -1 <= item["pixel_values"].min() <= item["pixel_values"].max() <= 1
    )
    assert torch.equal(a.batch([0, 1])["pixel_values"][1], a[1]["pixel_values"])


def test_stream_resumes_at_the_same_batch():
    s = shapes_stream(8, seed=1)
    batches = [next(s) for _ in range(3)]
    resumed = next(shapes_stream(8, seed=1, start=2))
    assert torch.equal(batches[2]["pixel_values"], resumed["pixel_values"])
    assert batches[2]["caption"] == resumed["caption"]
    assert all(not parse_caption(c).heldout for b in batches for c in b["caption"])


def test_other_resolutions_and_prompt_sets():
    attrs = sample_attributes(4, np.random.default_rng(0))
    assert render(attrs, 64).shape == (4, 3, 64, 64)
    assert len(prompt_set("heldout")) == 40 and len(prompt_set("train", n=10)) == 10
    assert prompt_set("train", n=10, seed=1) == prompt_set("train", n=10, seed=1)
