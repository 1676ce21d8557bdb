"""Where models and devices come from: the one module that turns a user's ``--model`` and ``--device`` into
a folder, a device and a loaded object.

- ``resolve_device("auto" | "cpu" | "cuda" | "cuda:1" ...)``: a torch device name, checked.
- ``resolve_model(name_or_path)``: a bundled model (by name or alias; None is the default) or a diffusers
  pipeline folder -> the folder.
- ``load_pipeline(name_or_path, scheduler, device)``: that folder as the pipeline class its
  ``model_index.json`` names (``StableDiffusionPipeline``, ``FPDMPipeline``, ``OneStepPipeline``,
  ``AnimateDiffPipeline``).
- ``bundled_path(name)``: the folder of one bundled model (the oracle, the avatar...).

Every failure a user can cause (an unknown name, a missing or corrupt folder, a device torch does not see)
is a :class:`genkit.utils.GenkitError` with a one-line message.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from genkit.assets import bundled_models
from genkit.utils import GenkitError, reading

__all__ = [
    "PIPELINE_KINDS",
    "bundled_path",
    "default_model",
    "load_pipeline",
    "pipeline_class_name",
    "resolve_device",
    "resolve_model",
]

# the kinds of bundled model that are diffusers pipelines (``genkit generate --model``)
PIPELINE_KINDS = ("text2img", "fpdm", "dit", "student", "video", "view-prior")


def resolve_device(name: str) -> str:
    """``--device``: "auto" (CUDA when torch sees a GPU, else the CPU) or a torch device name; GenkitError
    for a name torch does not know or a CUDA device torch does not see."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise GenkitError(
            f"--device {name!r} is not a device ('auto', 'cpu', 'cuda', 'cuda:1', ...)"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GenkitError(f"--device {name}: torch sees no CUDA GPU here")
    return name


def default_model() -> str:
    """The name of the bundled default model (``genkit generate`` without ``--model``)."""
    return next(name for name, info in bundled_models().items() if info.get("default"))


def bundled_path(name: str, kind: str | None = None) -> Path:
    """The folder of bundled model ``name`` (or of the first one of ``kind`` when ``name`` is None)."""
    models = bundled_models()
    if name is None:
        found = [info for info in models.values() if info["kind"] == kind]
        if not found:
            raise GenkitError(f"no bundled {kind} model in this installation")
        return Path(found[0]["path"])
    if name not in models:
        raise GenkitError(f"no bundled model {name!r} in this installation")
    return Path(models[name]["path"])


def resolve_model(name_or_path: str | os.PathLike | None) -> Path:
    """A bundled pipeline's name or alias (None: the default) or a diffusers pipeline folder -> folder;
    GenkitError otherwise."""
    models = bundled_models()
    bundled = {k: v for k, v in models.items() if v["kind"] in PIPELINE_KINDS}
    aliases = {a: k for k, v in bundled.items() for a in v.get("aliases", [])}
    name = default_model() if name_or_path is None else str(name_or_path)
    name = aliases.get(name, name)
    if name in bundled:
        return Path(bundled[name]["path"])
    if name in models:
        raise GenkitError(f"{name!r} is a bundled {models[name]['kind']} model, not a diffusers pipeline")
    p = Path(name)
    if p.is_dir():
        if not (p / "model_index.json").is_file():
            raise GenkitError(f"{name!r} is not a diffusers pipeline folder (no model_index.json)")
        return p
    if p.exists():
        raise GenkitError(f"{name!r} is a file, not a diffusers pipeline folder")
    raise GenkitError(
        f"unknown model {name!r}: not a bundled model ({', '.join([*bundled, *aliases])}) nor a folder"
    )


def pipeline_class_name(path: str | os.PathLike) -> str:
    """The ``_class_name`` recorded in a diffusers pipeline folder."""
    return json.loads((Path(path) / "model_index.json").read_text())["_class_name"]


def load_pipeline(
    name_or_path: str | os.PathLike | None,
    scheduler: str | None = None,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
):
    """The pipeline of a bundled name or a folder (``resolve_model``), as the class its
    ``model_index.json`` names, on ``device`` ("auto" allowed) in ``dtype``, with the named diffusers
    scheduler (``ddim``, ``dpm``, ``euler``; None keeps the saved one; a one-step student always keeps its
    own) and no progress bar. A folder that cannot be loaded is a GenkitError."""
    from genkit.pipelines.fpdm import load_fpdm
    from genkit.pipelines.one_step import load_one_step
    from genkit.pipelines.text2img import load_text2img
    from genkit.pipelines.video import load_video
    from genkit.pipelines.view_prior import ViewConditionedPipeline

    loaders = {
        "StableDiffusionPipeline": lambda p: load_text2img(
            p, scheduler=scheduler, device=device, dtype=dtype
        ),
        "FPDMPipeline": lambda p: load_fpdm(p, scheduler=scheduler, device=device, dtype=dtype),
        "OneStepPipeline": lambda p: load_one_step(p, device=device, dtype=dtype),
        "AnimateDiffPipeline": lambda p: load_video(p, scheduler=scheduler, device=device, dtype=dtype),
        "ViewConditionedPipeline": lambda p: load_text2img(
            p, scheduler=scheduler, device=device, dtype=dtype, pipeline_class=ViewConditionedPipeline
        ),
    }
    path, device = resolve_model(name_or_path), resolve_device(device)
    with reading(f"could not load model from {str(path)!r}", (Exception,)):  # a broken folder is the user's
        name = pipeline_class_name(path)
        if name not in loaders:
            raise GenkitError(f"{str(path)!r} holds a {name}; genkit loads {', '.join(loaders)} folders")
        return loaders[name](path)
