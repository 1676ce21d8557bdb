"""Evaluate a text-to-image generator, or a folder of images, with the shapes oracle.

Protocol: for each prompt of a split (every attribute combination of ``train`` = "seen", or of
``heldout``), ``num_per_prompt`` images with seeds ``seed + j``. Prompt accuracy counts an image correct
when the oracle reads the prompt's shape, colour and position off it. FD, precision and recall compare
oracle features against ``num_real`` real procedural images of the same split; diversity is the mean
pairwise feature distance among the images of one prompt.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from genkit.data.shapes import COLORS, POSITIONS, SHAPES, SIZES, ShapesDataset, parse_caption
from genkit.metrics.classifier import ShapesClassifier
from genkit.metrics.scores import diversity, frechet_distance, precision_recall, prompt_accuracy
from genkit.utils import GenkitError, reading


def load_oracle(path: str | None = None, device: str | torch.device = "cpu") -> ShapesClassifier:
    """The shapes oracle: the bundled one, or a folder written by ``genkit train classifier``."""
    if path is None:
        from genkit.assets import bundled_models

        path = bundled_models()["shapes-oracle"]["path"]
    with reading(f"could not load the oracle classifier from {path!r}", (Exception,)):  # a bad path
        return ShapesClassifier.from_pretrained(path).to(device).eval()


def prompt_labels(prompts: list[str]) -> dict[str, torch.Tensor]:
    attrs = [parse_caption(p) for p in prompts]
    return {
        "shape": torch.tensor([SHAPES.index(a.shape) for a in attrs]),
        "color": torch.tensor([list(COLORS).index(a.color) for a in attrs]),
        "position": torch.tensor([list(POSITIONS).index(a.position) for a in attrs]),
        "size": torch.tensor([list(SIZES).index(a.size) for a in attrs]),
    }


def real_features(
    oracle: ShapesClassifier, split: str, num_real: int = 2000, seed: int = 12345
) -> torch.Tensor:
    ds = ShapesDataset(num_real, oracle.config.resolution, seed=seed, split=split)
    return oracle.predict(ds.batch(range(len(ds)))["pixel_values"])["features"]


def score_images(
    images: torch.Tensor, prompts: list[str], oracle: ShapesClassifier, real: torch.Tensor
) -> dict[str, float]:
    """All metrics for ``images`` (N, 3, R, R) in [-1, 1] generated from ``prompts`` (N captions)."""
    pred = oracle.predict(images)
    target = prompt_labels(prompts)
    precision, recall = precision_recall(real, pred["features"])
    per_attr = {
        f"accuracy_{k}": (pred[k] == target[k]).float().mean().item()
        for k in ("shape", "color", "position", "size")
    }
    return {
        "prompt_accuracy": prompt_accuracy(pred, target),
        "fd": frechet_distance(real, pred["features"]),
        "precision": precision,
        "recall": recall,
        "diversity": diversity(pred["features"], prompts),
        **per_attr,
        "num_images": len(prompts),
    }


@torch.no_grad()
def generate_images(
    pipe,
    prompts: list[str],
    num_per_prompt: int,
    steps: int,
    guidance: float,
    seed: int,
    batch_size: int = 64,
    on_output: Callable[[Any], None] | None = None,
    **call_kwargs,
) -> tuple[torch.Tensor, list[str], float]:
    """Images in [-1, 1] for each prompt x seed, their prompts, and the seconds spent generating.

    ``call_kwargs`` go to the pipeline (e.g. an FPDM pipeline's ``iterations_per_step``); ``on_output``,
    if given, sees each batch's pipeline output (e.g. to add up its FLOP counter)."""
    all_prompts = [p for p in prompts for _ in range(num_per_prompt)]
    seeds = [seed + j for _ in prompts for j in range(num_per_prompt)]
    out = []
    t0 = time.perf_counter()
    for i in range(0, len(all_prompts), batch_size):
        gens = [torch.Generator(device="cpu").manual_seed(s) for s in seeds[i : i + batch_size]]
        res = pipe(
            all_prompts[i : i + batch_size],
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=gens,
            output_type="pt",
            **call_kwargs,
        )
        if on_output is not None:
            on_output(res)
        out.append(res.images.float().cpu() * 2 - 1)
    return torch.cat(out), all_prompts, time.perf_counter() - t0


def load_image_folder(folder: str | Path) -> tuple[torch.Tensor, list[str]]:
    """Images and prompts of a folder with a ``metadata.jsonl`` (``file_name``, ``text``), as written by
    ``genkit generate`` and read by the datasets ImageFolder loader."""
    folder = Path(folder)
    meta = folder / "metadata.jsonl"
    if not meta.is_file():
        raise GenkitError(
            f'{str(folder)!r} has no metadata.jsonl (lines of {{"file_name": ..., "text": ...}})'
        )
    images, prompts = [], []
    for n, line in enumerate(meta.read_text().splitlines(), 1):
        if not line.strip():
            continue
        with reading(f"{str(meta)!r} line {n}"):  # JSON, fields, a missing or broken image
            rec = json.loads(line)
            img = Image.open(folder / rec["file_name"]).convert("RGB")
            prompts.append(str(rec["text"]))
        images.append(torch.from_numpy(np.asarray(img)).permute(2, 0, 1).float() / 127.5 - 1)
    if not images:
        raise GenkitError(f"{str(meta)!r} lists no images")
    sizes = {tuple(x.shape) for x in images}
    if len(sizes) != 1:
        raise GenkitError(f"images in {str(folder)!r} have different sizes: {sorted(sizes)}")
    return torch.stack(images), prompts
