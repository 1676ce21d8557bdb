"""Evaluate a text-to-image generator, or a folder of images, with the shapes oracle and whole-image measures.

Protocol: for each prompt of a split (every attribute combination of ``train`` = "seen", or of
``heldout``), ``num_images`` images with seeds ``seed + j``. Prompt accuracy counts an image correct
when the oracle reads the prompt's shape, colour and position off it. FD, precision and recall compare
oracle features against ``num_real`` real procedural images of the same split; diversity is the mean
pairwise feature distance among the images of one prompt. The oracle is trained to ignore the
background, so two measures of ``genkit.metrics.whole_image`` sit beside them: ``fd_whole`` (the FD in the
features of a fixed random network, against the same real images) and ``artifact_rate`` (images with
patches of another grey in their background).

A video model (an ``AnimateDiffPipeline``) is scored on the moving-shapes prompts with the video metrics
of ``genkit.metrics.video``: motion accuracy (tracking), per-frame prompt accuracy, flicker against real
clips and FVD in the video classifier's features.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from genkit.data.shapes import (
    BACKGROUNDS,
    COLORS,
    POSITIONS,
    SHAPES,
    SIZES,
    ShapesDataset,
    parse_caption,
    prompt_set,
)
from genkit.metrics.classifier import ShapesClassifier
from genkit.metrics.scores import diversity, frechet_distance, precision_recall, prompt_accuracy
from genkit.metrics.whole_image import artifact_rate, whole_image_features
from genkit.utils import GenkitError, atomic_file, output_file, reading


def load_oracle(path: str | None = None, device: str | torch.device = "cpu") -> ShapesClassifier:
    """The shapes oracle: the bundled one, or a folder written by ``genkit train classifier``."""
    if path is None:
        from genkit.loading import bundled_path

        path = str(bundled_path("shapes-oracle"))
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


@dataclass
class RealReference:
    """What generated images are compared with: the features of ``num`` real procedural images of a split
    in the oracle's space and in the whole-image space."""

    oracle: torch.Tensor
    whole: torch.Tensor


def real_features(
    oracle: ShapesClassifier, split: str, num_real: int = 2000, seed: int = 12345
) -> RealReference:
    images = ShapesDataset(num_real, oracle.config.resolution, seed=seed, split=split).batch(range(num_real))
    images = images["pixel_values"]
    return RealReference(oracle.predict(images)["features"], whole_image_features(images))


def background_tones(images: torch.Tensor) -> dict[int, float]:
    """The fraction of images whose background (the median of the border) is nearest to each of the
    procedural data's grey levels."""
    x = (images.float().clamp(-1, 1) + 1) / 2 * 255
    border = torch.cat([x[..., :2, :].flatten(1), x[..., -2:, :].flatten(1)], -1)
    nearest = (
        (border.median(-1).values[:, None] - torch.tensor(BACKGROUNDS, dtype=torch.float32)).abs().argmin(1)
    )
    return {grey: float((nearest == i).float().mean()) for i, grey in enumerate(BACKGROUNDS)}


def score_images(
    images: torch.Tensor, prompts: list[str], oracle: ShapesClassifier, real: RealReference
) -> dict[str, float]:
    """All metrics for ``images`` (N, 3, R, R) in [-1, 1] generated from ``prompts`` (N captions)."""
    pred = oracle.predict(images)
    target = prompt_labels(prompts)
    precision, recall = precision_recall(real.oracle, pred["features"])
    per_attr = {
        f"accuracy_{k}": (pred[k] == target[k]).float().mean().item()
        for k in ("shape", "color", "position", "size")
    }
    return {
        "prompt_accuracy": prompt_accuracy(pred, target),
        "fd": frechet_distance(real.oracle, pred["features"]),
        "fd_whole": frechet_distance(real.whole, whole_image_features(images)),
        "artifact_rate": artifact_rate(images),
        "precision": precision,
        "recall": recall,
        "diversity": diversity(pred["features"], prompts),
        **per_attr,
        "background_tones": background_tones(images),
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


@dataclass
class EvalConfig:
    model: str | None = field(
        default=None, metadata={"help": "bundled model name or diffusers folder to generate from"}
    )
    images: str | None = field(
        default=None, metadata={"help": "folder of images with metadata.jsonl (e.g. from genkit generate)"}
    )
    split: str = field(
        default="both", metadata={"help": "prompt set for --model", "choices": ["train", "heldout", "both"]}
    )
    num_images: int = field(default=4, metadata={"help": "images per prompt (seeds seed..seed+n-1)"})
    steps: int | None = field(
        default=None,
        metadata={"help": "denoising steps (default: 25; a distilled student: the steps it was trained for)"},
    )
    num_prompts: int | None = field(
        default=None, metadata={"help": "evaluate this many prompts of each split (default: all)"}
    )
    scheduler: str = field(
        default="dpm", metadata={"help": "diffusers scheduler", "choices": ["ddim", "dpm", "euler"]}
    )
    guidance: float = field(default=4.0, metadata={"help": "classifier-free guidance scale"})
    seed: int = field(default=0, metadata={"help": "first seed"})
    oracle: str | None = field(
        default=None,
        metadata={"help": "oracle classifier folder (default: bundled; a video model: the video classifier)"},
    )
    num_real: int = field(
        default=2000, metadata={"help": "real images per split for FD / precision / recall (video: clips)"}
    )
    device: str = field(default="auto", metadata={"help": "'auto', 'cpu', 'cuda', ..."})
    out: str | None = field(default=None, metadata={"help": "also write the results to this JSON file"})

    def __post_init__(self):
        if (self.model is None) == (self.images is None):
            raise GenkitError("give exactly one of --model or --images")
        if (self.steps is not None and self.steps <= 0) or self.num_images <= 0 or self.num_real <= 1:
            raise GenkitError("--steps and --num-images must be positive, --num-real at least 2")
        if self.num_prompts is not None and self.num_prompts <= 0:
            raise GenkitError("--num-prompts must be positive")


def evaluate(cfg: EvalConfig) -> dict[str, dict]:
    """Score ``cfg.model`` (generated for every prompt of the split) or ``cfg.images``; results per split,
    also written to ``cfg.out`` as JSON when given."""
    from genkit.loading import load_pipeline, resolve_device

    out = output_file(cfg.out) if cfg.out else None  # checked before the work
    device = resolve_device(cfg.device)
    pipe = load_pipeline(cfg.model, cfg.scheduler, device) if cfg.model is not None else None
    if type(pipe).__name__ == "AnimateDiffPipeline":
        results = evaluate_video(pipe, cfg, device)
    else:
        results = _evaluate_images(pipe, cfg, device)
    if out is not None:
        with atomic_file(out) as tmp:
            tmp.write_text(json.dumps({"config": vars(cfg), "results": results}, indent=2) + "\n")
    return results


def _evaluate_images(pipe, cfg: EvalConfig, device: str) -> dict[str, dict]:
    from genkit.generate import sampling_steps

    oracle = load_oracle(cfg.oracle, device)
    results: dict[str, dict] = {}
    if cfg.images is not None:
        images, prompts = load_image_folder(cfg.images)
        try:
            heldout = [parse_caption(p).heldout for p in prompts]
        except ValueError as e:
            raise GenkitError(str(e)) from None
        split = "all" if len(set(heldout)) > 1 else ("heldout" if heldout[0] else "train")
        results[split] = score_images(images, prompts, oracle, real_features(oracle, split, cfg.num_real))
    else:
        steps = sampling_steps(pipe, cfg.steps, cfg.model)
        for split in ["train", "heldout"] if cfg.split == "both" else [cfg.split]:
            images, prompts, secs = generate_images(
                pipe, prompt_set(split, cfg.num_prompts), cfg.num_images, steps, cfg.guidance, cfg.seed
            )
            r = score_images(images, prompts, oracle, real_features(oracle, split, cfg.num_real))
            r["images_per_second"] = len(prompts) / secs
            results[split] = r
    return results


def evaluate_video(pipe, cfg: EvalConfig, device: str) -> dict[str, dict]:
    """The video metrics (``genkit.metrics.video.score_clips``) of an AnimateDiff pipeline's clips of the
    moving-shapes prompts of each split, at the video classifier's frame count (for a model trained with
    ``--noise-warp``, the noise carried along a path drawn for each prompt, as ``genkit video`` does)."""
    from genkit.data.video import prompt_path, video_prompt_set
    from genkit.loading import resolve_model
    from genkit.metrics.video import load_video_classifier, real_video_features, score_clips
    from genkit.pipelines.video import generate_clips, trained_noise_shared, trained_noise_warp

    model = resolve_model(cfg.model)
    shared, path_fn = trained_noise_shared(model), prompt_path if trained_noise_warp(model) else None
    classifier = load_video_classifier(cfg.oracle, device)
    reference = real_video_features(classifier, cfg.num_real)
    results: dict[str, dict] = {}
    for split in ["train", "heldout"] if cfg.split == "both" else [cfg.split]:
        prompts = [p for p in video_prompt_set(split, cfg.num_prompts) for _ in range(cfg.num_images)]
        seeds = [cfg.seed + i % cfg.num_images for i in range(len(prompts))]
        t0, clips = time.perf_counter(), []
        for i in range(0, len(prompts), 8):
            clips.append(
                generate_clips(
                    pipe,
                    prompts[i : i + 8],
                    seeds[i : i + 8],
                    classifier.config.frames,
                    cfg.steps or 25,
                    cfg.guidance,
                    shared,
                    path_fn=path_fn,
                )
            )
        secs = time.perf_counter() - t0
        results[split] = {**score_clips(torch.cat(clips), prompts, classifier, reference)}
        results[split]["clips_per_second"] = len(prompts) / secs
    return results


COLUMNS = ("prompt_accuracy", "fd", "fd_whole", "artifact_rate", "precision", "recall", "diversity")
VIDEO_COLUMNS = ("motion_accuracy", "frame_prompt_accuracy", "flicker_ratio", "fvd", "clips_per_second")


def results_table(results: dict[str, dict]) -> str:
    """``evaluate``'s results as a text table, one row per split."""
    columns = VIDEO_COLUMNS if "fvd" in next(iter(results.values())) else COLUMNS
    lines = [f"{'split':<10}" + "".join(f"{k:>22}" for k in columns)]
    lines += [f"{split:<10}" + "".join(f"{r[k]:>22.4f}" for k in columns) for split, r in results.items()]
    return "\n".join(lines)
