"""``genkit eval --model NAME|PATH`` or ``genkit eval --images DIR``: prompt accuracy, FD, precision/recall, diversity."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from genkit.cli._args import add_dataclass_args, from_args
from genkit.utils import GenkitError, atomic_file, output_file


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
    num_per_prompt: int = field(default=4, metadata={"help": "images per prompt (seeds seed..seed+n-1)"})
    steps: int = field(default=25, metadata={"help": "denoising steps"})
    scheduler: str = field(
        default="dpm", metadata={"help": "diffusers scheduler", "choices": ["ddim", "dpm", "euler"]}
    )
    guidance: float = field(default=4.0, metadata={"help": "classifier-free guidance scale"})
    seed: int = field(default=0, metadata={"help": "first seed"})
    oracle: str | None = field(default=None, metadata={"help": "oracle classifier folder (default: bundled)"})
    num_real: int = field(
        default=2000, metadata={"help": "real images per split for FD / precision / recall"}
    )
    device: str = field(default="auto", metadata={"help": "'auto', 'cpu', 'cuda', ..."})
    out: str | None = field(default=None, metadata={"help": "also write the results to this JSON file"})

    def __post_init__(self):
        if (self.model is None) == (self.images is None):
            raise GenkitError("give exactly one of --model or --images")
        if self.steps <= 0 or self.num_per_prompt <= 0 or self.num_real <= 1:
            raise GenkitError("--steps and --num-per-prompt must be positive, --num-real at least 2")


def run(cfg: EvalConfig) -> dict:
    from genkit.cli.generate import load_pipeline, resolve_device
    from genkit.data.shapes import parse_caption, prompt_set
    from genkit.metrics.evaluate import (
        generate_images,
        load_image_folder,
        load_oracle,
        real_features,
        score_images,
    )

    out = output_file(cfg.out) if cfg.out else None  # checked before the work
    device = resolve_device(cfg.device)
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
        pipe = load_pipeline(cfg.model, cfg.scheduler, cfg.device)
        for split in ["train", "heldout"] if cfg.split == "both" else [cfg.split]:
            images, prompts, secs = generate_images(
                pipe, prompt_set(split), cfg.num_per_prompt, cfg.steps, cfg.guidance, cfg.seed
            )
            r = score_images(images, prompts, oracle, real_features(oracle, split, cfg.num_real))
            r["images_per_second"] = len(prompts) / secs
            results[split] = r
    print(
        f"{'split':<10}"
        + "".join(f"{k:>18}" for k in ("prompt_accuracy", "fd", "precision", "recall", "diversity"))
    )
    for split, r in results.items():
        print(
            f"{split:<10}"
            + "".join(f"{r[k]:>18.4f}" for k in ("prompt_accuracy", "fd", "precision", "recall", "diversity"))
        )
    if out is not None:
        with atomic_file(out) as tmp:
            tmp.write_text(json.dumps({"config": vars(cfg), "results": results}, indent=2) + "\n")
        print(f"wrote {out}")
    return results


def _cli(ns) -> int:
    run(from_args(EvalConfig, ns))
    return 0


def register(sub) -> None:
    p = sub.add_parser("eval", help="measure a model or a folder of images", description=__doc__)
    add_dataclass_args(p, EvalConfig)
    p.set_defaults(run=_cli)
