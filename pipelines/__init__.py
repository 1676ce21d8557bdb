"""genkit.pipelines: diffusers-native pipelines (text-to-image, Fixed Point Diffusion, one/few-step
students; text-to-3D later).

``load_pipeline(path)`` opens any pipeline folder genkit writes: it reads ``_class_name`` from the folder's
``model_index.json`` (as ``DiffusionPipeline.from_pretrained`` does) and hands the folder to that class.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

__all__ = ["load_pipeline", "pipeline_class_name"]


def pipeline_class_name(path: str | os.PathLike) -> str:
    """The ``_class_name`` recorded in a diffusers pipeline folder."""
    return json.loads((Path(path) / "model_index.json").read_text())["_class_name"]


def load_pipeline(
    path: str | os.PathLike,
    scheduler: str | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
):
    """A ``StableDiffusionPipeline``, ``FPDMPipeline`` or ``OneStepPipeline`` folder, on ``device`` in ``dtype``, with the named
    diffusers scheduler (``ddim``, ``dpm``, ``euler``; None keeps the saved one) and no progress bar."""
    from genkit.pipelines.fpdm import load_fpdm
    from genkit.pipelines.one_step import load_one_step
    from genkit.pipelines.text2img import load_text2img

    name = pipeline_class_name(path)
    if name == "FPDMPipeline":
        return load_fpdm(path, scheduler=scheduler, device=device, dtype=dtype)
    if name == "OneStepPipeline":  # a student samples with its own LCMScheduler at its saved timesteps
        return load_one_step(path, device=device, dtype=dtype)
    if name == "StableDiffusionPipeline":
        return load_text2img(path, scheduler=scheduler, device=device, dtype=dtype)
    raise ValueError(
        f"unsupported pipeline class {name!r} (expected StableDiffusionPipeline, FPDMPipeline or OneStepPipeline)"
    )
