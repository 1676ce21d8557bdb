import pytest
import torch
from PIL import Image

from genkit.metrics.evaluate import load_image_folder
from genkit.metrics.scores import diversity, frechet_distance, precision_recall, prompt_accuracy
from genkit.utils import GenkitError


def test_frechet_distance_known_values():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4000, 8, generator=g)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # Same covariance, mean shifted by 2 in every coordinate: FD = ||mu diff||^2 = 8 * 4 = 32
    assert frechet_distance(a, a + 2.0) == pytest.approx(32.0, rel=1e-6)
    # Scaled by 3: covariances I and 9I -> Tr(I + 9I - 2*3I) = 4 * 8 = 32 (up to sampling error)
    b = torch.randn(4000, 8, generator=g) * 3
    assert frechet_distance(a, b) == pytest.approx(32.0, rel=0.1)


def test_precision_recall_identical_and_disjoint():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(300, 4, generator=g)
    assert precision_recall(a, a.clone()) == (1.0, 1.0)
    p, r = precision_recall(a, a + 100)
    assert p == 0.0 and r == 0.0
    # fake covering only half of the real distribution: high precision, lower recall
    half = a[a[:, 0] > 0]
    p, r = precision_recall(a, half)
    assert p > 0.95 and r < 0.75


def test_diversity_and_prompt_accuracy():
    f = torch.tensor([[0.0, 0.0], [3.0, 4.0], [1.0, 1.0], [1.0, 1.0]])
    assert diversity(f, ["a", "a", "b", "b"]) == pytest.approx(2.5)  # (5 + 0) / 2
    pred = {
        "shape": torch.tensor([0, 1, 2]),
        "color": torch.tensor([1, 1, 1]),
        "position": torch.tensor([0, 0, 4]),
    }
    target = {
        "shape": torch.tensor([0, 1, 2]),
        "color": torch.tensor([1, 0, 1]),
        "position": torch.tensor([0, 0, 0]),
    }
    assert prompt_accuracy(pred, target) == pytest.approx(1 / 3)


def test_image_folder_with_a_broken_listing_is_a_clear_error(tmp_path):
    Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / "a.png")
    meta = tmp_path / "metadata.jsonl"
    meta.write_text('{"file_name": "a.png", "text": "a small red circle at the top left"}\n')
    images, prompts = load_image_folder(tmp_path)
    assert images.shape == (1, 3, 8, 8) and images[0, 0].eq(1).all() and images[0, 1].eq(-1).all()
    assert prompts == ["a small red circle at the top left"]
    for line, message in (
        ('{"file_name": "gone.png", "text": "x"}', "line 2: FileNotFoundError"),
        ("not json", "line 2: JSONDecodeError"),
        ('{"file_name": "a.png"}', "line 2: KeyError"),
    ):
        meta.write_text('{"file_name": "a.png", "text": "x"}\n' + line + "\n")
        with pytest.raises(GenkitError, match=message):
            load_image_folder(tmp_path)


# --- whole-image measures -------------------------------------------------------------------------------


def _real(n, seed):
    from genkit.data.shapes import ShapesDataset

    return ShapesDataset(n, 32, seed=seed).batch(range(n))["pixel_values"]


def _with_grey_patches(images, seed=1):
    """Real images with a disc of another background grey over part of their background."""
    from genkit.data.shapes import BACKGROUNDS

    out, g = images.clone(), torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    for img in out:
        cx, cy = torch.randint(0, 32, (2,), generator=g).float()
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 < (8 + 4 * torch.rand(1, generator=g)) ** 2
        background = (img - img[:, :1, :1]).abs().amax(0) < 0.05
        others = [b for b in BACKGROUNDS if abs(b / 127.5 - 1 - float(img[0, 0, 0])) > 0.2]
        img[:, disc & background] = others[int(torch.randint(0, len(others), (1,), generator=g))] / 127.5 - 1
    return out


def test_background_artifacts_flag_grey_patches_and_no_real_image():
    from genkit.metrics.whole_image import artifact_rate, background_artifacts

    real = _real(600, 3)
    assert artifact_rate(real) == 0.0 and background_artifacts(real).max() < 0.01
    patched = _with_grey_patches(real[:100])
    assert artifact_rate(patched) > 0.9
    # a uniform image of one grey has no artifact; half of it another grey is half artifact
    flat = torch.full((1, 3, 32, 32), -0.4)
    half = flat.clone()
    half[..., 16:, :] = 0.5
    assert background_artifacts(flat).item() == 0.0 and background_artifacts(half).item() == pytest.approx(
        0.5
    )


def test_whole_image_fd_sees_the_background_the_oracle_ignores():
    from genkit.data.shapes import ShapesDataset
    from genkit.metrics.evaluate import load_oracle
    from genkit.metrics.whole_image import WholeImageFeatures, whole_image_features

    a, b = WholeImageFeatures(), WholeImageFeatures()
    x = _real(8, 0)
    torch.testing.assert_close(a(x), b(x))  # fixed by the seed
    assert a(x).shape == (8, 224) and torch.allclose(a(x)[0, :3], whole_image_features(x)[0, :3])

    reference, other = _real(1000, 12345), _real(200, 7)
    one_grey = ShapesDataset(200, 32, seed=7)
    one_grey.attrs["background"][:] = 2  # every background the same mid grey: the shapes are unchanged
    one_grey = one_grey.batch(range(200))["pixel_values"]
    oracle = load_oracle()
    ref_o, ref_w = oracle.predict(reference)["features"], whole_image_features(reference)

    def fds(x):
        return frechet_distance(ref_o, oracle.predict(x)["features"]), frechet_distance(
            ref_w, whole_image_features(x)
        )

    (o_real, w_real), (o_grey, w_grey), (_, w_patch) = (
        fds(other),
        fds(one_grey),
        fds(_with_grey_patches(other)),
    )
    assert w_grey > 50 * w_real and w_patch > 3 * w_real  # the whole-image space sees both
    assert o_grey < 1.6 * o_real  # the oracle's space barely moves for a collapsed background
