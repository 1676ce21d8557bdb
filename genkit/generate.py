"""``genkit generate``: images from text prompts with a bundled model or any diffusers pipeline folder.

``--model`` takes a bundled name (``genkit models``; ``fpdm``, ``dit`` and ``student`` are short for
``fpdm-shapes``, ``dit-shapes`` and ``student-shapes``) or a diffusers pipeline folder (Stable Diffusion,
FPDM, or a student written by ``genkit distill``, which ignores ``--guidance`` and ``--scheduler``). For
FPDM models ``--iterations``, ``--allocation`` and ``--warm-start/--no-warm-start`` set the fixed-point
budget per step, how it is spread over the steps, and the reuse of the previous step's solution."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genkit.loading import default_model, load_pipeline, pipeline_class_name, resolve_device, resolve_model
from genkit.utils import GenkitError, atomic_file, ensure_writable_dir, image_grid, reading

__all__ = ["GenerateConfig", "generate", "sampling_steps"]


@dataclass
class GenerateConfig:
    prompt: list[str] = field(
        metadata={
            "help": "one or more prompts, e.g. 'a small red circle at the top left'",
            "positional": True,
        }
    )
    model: str | None = field(
        default=None,
        metadata={
            "help": "bundled model name or alias (see 'genkit models'; default: the bundled default) "
            "or a diffusers Stable Diffusion / FPDM pipeline folder"
        },
    )
    steps: int | None = field(
        default=None,
        metadata={"help": "denoising steps (default: 25; a distilled student: the steps it was trained for)"},
    )
    scheduler: str = field(
        default="dpm", metadata={"help": "diffusers scheduler", "choices": ["ddim", "dpm", "euler"]}
    )
    guidance: float = field(default=4.0, metadata={"help": "classifier-free guidance scale (1 disables)"})
    seed: int = field(default=0, metadata={"help": "seed of image j of each prompt is seed + j"})
    num_images: int = field(default=4, metadata={"help": "images per prompt"})
    iterations: int | None = field(
        default=None,
        metadata={"help": "FPDM: mean fixed-point iterations per step (default: the model's config)"},
    )
    allocation: str = field(
        default="constant",
        metadata={
            "help": "FPDM: spread of the iterations over steps",
            "choices": ["constant", "increasing", "decreasing"],
        },
    )
    warm_start: bool = field(
        default=True, metadata={"help": "FPDM: start each step's fixed point from the previous solution"}
    )
    out: str = field(
        default="outputs/generate", metadata={"help": "output folder (images, grid.png, metadata.jsonl)"}
    )
    device: str = field(default="auto", metadata={"help": "'auto' (CUDA if available), 'cpu', 'cuda', ..."})
    grid_scale: int = field(
        default=4, metadata={"help": "nearest-neighbour upscaling of grid.png, for viewing"}
    )

    def __post_init__(self):
        if not self.prompt or any(not p.strip() for p in self.prompt):
            raise GenkitError("prompt must not be empty")
        if self.steps is not None and self.steps <= 0:
            raise GenkitError(f"--steps must be a positive integer, got {self.steps}")
        if self.num_images <= 0:
            raise GenkitError(f"--num-images must be a positive integer, got {self.num_images}")
        if self.grid_scale <= 0:
            raise GenkitError(f"--grid-scale must be a positive integer, got {self.grid_scale}")
        if self.iterations is not None and self.iterations <= 0:
            raise GenkitError(f"--iterations must be a positive integer, got {self.iterations}")


def sampling_steps(pipe, steps: int | None, model: str) -> int:
    """The denoising steps to run: ``steps``, else 25; a distilled student runs its trained timesteps (at
    most that many; guidance is distilled in)."""
    from genkit.pipelines.one_step import OneStepPipeline

    if isinstance(pipe, OneStepPipeline):
        trained = len(pipe.config.student_timesteps)
        if steps is not None and steps > trained:
            raise GenkitError(f"{model!r} is a {trained}-step student: --steps must be 1..{trained}")
        return steps or trained
    return steps or 25


def generate(cfg: GenerateConfig) -> tuple[Path, int]:
    """Generate ``cfg.num_images`` images per prompt into ``cfg.out``: the PNGs, ``grid.png`` (one row per
    prompt) and ``metadata.jsonl`` (prompt, seed and settings of each image). Returns (grid, images)."""
    import imageio.v3 as iio
    import torch
    from tqdm.auto import tqdm

    from genkit.pipelines.fpdm import FPDMPipeline

    # a bad model or device fails before the output folder is made, an unusable folder before any work
    path, device = resolve_model(cfg.model), resolve_device(cfg.device)
    model = cfg.model or default_model()
    with reading(f"could not load model from {str(path)!r}", (Exception,)):
        if pipeline_class_name(path) == "AnimateDiffPipeline":
            raise GenkitError(f"{model!r} is a video model; use 'genkit video'")
    out = ensure_writable_dir(cfg.out)
    pipe = load_pipeline(path, cfg.scheduler, device)
    fpdm = isinstance(pipe, FPDMPipeline)
    steps = sampling_steps(pipe, cfg.steps, model)
    fpdm_args = {}
    if fpdm:
        fpdm_args = dict(
            iterations_per_step=cfg.iterations, allocation=cfg.allocation, warm_start=cfg.warm_start
        )
    elif cfg.iterations is not None or cfg.allocation != "constant" or not cfg.warm_start:
        raise GenkitError(f"--iterations, --allocation and --warm-start apply to FPDM models, not {model!r}")
    images, records = [], []
    for i, prompt in enumerate(
        tqdm(cfg.prompt, desc="generate", unit="prompt", disable=len(cfg.prompt) == 1)
    ):
        gens = [torch.Generator(device="cpu").manual_seed(cfg.seed + j) for j in range(cfg.num_images)]
        with torch.no_grad():
            res = pipe(
                [prompt] * cfg.num_images,
                num_inference_steps=steps,
                guidance_scale=cfg.guidance,
                generator=gens,
                output_type="np",
                **fpdm_args,
            )
        extra = {}
        if fpdm:
            extra = {
                "iterations": res.iterations,
                "block_evaluations": res.block_evaluations,
                "gflops": round(res.flops / cfg.num_images / 1e9, 4),
                "warm_start": cfg.warm_start,
            }
        batch = (np.clip(res.images, 0, 1) * 255).round().astype(np.uint8)
        for j, im in enumerate(batch):
            name = f"{i:03d}_{j:02d}.png"
            with atomic_file(out / name) as tmp:
                iio.imwrite(tmp, im, extension=".png")
            records.append(
                {
                    "file_name": name,
                    "text": prompt,
                    "seed": cfg.seed + j,
                    "steps": steps,
                    "scheduler": cfg.scheduler,
                    "guidance": cfg.guidance,
                    "model": model,
                    **extra,
                }
            )
        images.append(batch)
    grid_path = out / "grid.png"
    with atomic_file(grid_path) as tmp:
        iio.imwrite(
            tmp,
            image_grid(np.concatenate(images), rows=len(cfg.prompt), scale=cfg.grid_scale),
            extension=".png",
        )
    with atomic_file(out / "metadata.jsonl") as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in records))
    return grid_path, len(records)
