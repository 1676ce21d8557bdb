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
