"""Pieces shared by every genkit training loop: accelerator set-up, resumable checkpoints, progress.

The loops themselves (``genkit/training/{vae,text2img,classifier}.py``) stay readable top to bottom and
call these. Checkpoints are accelerate's ``save_state`` folders named ``checkpoint-<step>``; a new one is
written to a temporary folder and renamed, so a run killed at any moment resumes from the last complete
checkpoint and loses at most one checkpoint interval.

State beyond the prepared models, optimizers and schedulers (an EMA, an occupancy grid) goes through
``states={"ema": ema}`` of ``save_checkpoint`` and ``resume``, as ``<name>.safetensors`` in the checkpoint,
not through ``accelerator.register_for_checkpointing``: accelerate pickles such objects and unpickles them
in full (``weights_only=False``) on resume, and genkit never unpickles a file in full.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration, set_seed
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from genkit.loading import resolve_device
from genkit.utils import GenkitError, ensure_writable_dir

_CKPT = re.compile(r"^checkpoint-(\d+)$")


class TrainStep(torch.nn.Module):
    """A training step's computation as the forward of the module that ``accelerator.prepare`` wraps:
    ``step = accelerator.prepare(TrainStep(model))``, then ``step(fn, *args)`` returns ``fn(model, *args)``.
    In a multi-process run (``accelerate launch``) DistributedDataParallel averages the gradients of what
    its forward computed; a step that calls other methods of the model (``vae.encode``, a field's
    ``density``, an avatar's ``prepare`` and ``render``) would crash on the wrapper (it has no such
    methods) or, through ``unwrap_model``, leave every process with its own gradients."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, fn, *args, **kwargs):
        return fn(self.model, *args, **kwargs)


def make_accelerator(
    out_dir: str | Path, seed: int, mixed_precision: str = "no", device: str = "auto"
) -> Accelerator:
    """The run's accelerator, after checking that the run folder ``out_dir`` can be made and written and
    that ``device`` exists (GenkitError before any training otherwise). ``device``: "auto" (accelerate's
    choice: the GPU of each process under ``accelerate launch``, else CUDA if torch sees it, else the CPU),
    "cpu", or a CUDA device for a single-process run."""
    out = ensure_writable_dir(out_dir)
    device = resolve_device(device) if device != "auto" else device
    if device not in ("auto", "cpu") and torch.device(device).index is not None:
        torch.cuda.set_device(device)
    accelerator = Accelerator(
        cpu=device == "cpu",
        mixed_precision=mixed_precision,
        # genkit's schedules count optimizer steps (cosine to max_train_steps, milestones...); accelerate's
        # default steps a prepared scheduler once per process at every optimizer step, which with N
        # processes ends the schedule after 1/N of the run (and restarts a cosine)
        step_scheduler_with_optimizer=False,
        project_config=ProjectConfiguration(project_dir=str(out), logging_dir=str(out / "logs")),
    )
    set_seed(seed)
    return accelerator


def latest_checkpoint(out_dir: str | Path) -> tuple[Path | None, int]:
    """The newest complete ``checkpoint-<step>`` folder under ``out_dir/checkpoints`` and its step."""
    root = Path(out_dir) / "checkpoints"
    best: tuple[Path | None, int] = (None, 0)
    if root.is_dir():
        for p in root.iterdir():
            m = _CKPT.match(p.name)
            if m and p.is_dir() and int(m.group(1)) > best[1]:
                best = (p, int(m.group(1)))
    return best


def save_state(state: dict, path: str | Path) -> None:
    """A ``state_dict`` of tensors, lists of tensors and JSON values (an EMA's) as one safetensors file:
    the tensors (a list's as ``key.i``), the rest as JSON in its metadata (``load_state`` reads it)."""
    tensors, meta = {}, {}
    for key, value in state.items():
        if isinstance(value, torch.Tensor):
            tensors[key] = value
        elif isinstance(value, (list, tuple)) and value and all(isinstance(t, torch.Tensor) for t in value):
            meta[key] = {"tensors": len(value)}
            tensors.update({f"{key}.{i}": t for i, t in enumerate(value)})
        else:
            meta[key] = {"value": value}
    # copies: safetensors refuses tensors that share memory
    tensors = {k: t.detach().cpu().clone().contiguous() for k, t in tensors.items()}
    save_file(tensors, str(path), metadata={"state": json.dumps(meta)})


def load_state(path: str | Path, device: str | torch.device = "cpu") -> dict:
    """``save_state``'s dict back, its tensors on ``device``."""
    with safe_open(str(path), "pt", device=str(device)) as f:
        meta = json.loads((f.metadata() or {}).get("state", "{}"))
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    state = {}
    for key, m in meta.items():
        state[key] = (
            [tensors.pop(f"{key}.{i}") for i in range(m["tensors"])] if "tensors" in m else m["value"]
        )
    return {**state, **tensors}


def resume(accelerator: Accelerator, out_dir: str | Path, states: dict[str, Any] | None = None) -> int:
    """Load the newest checkpoint if there is one, and into each of ``states`` (name -> object with
    ``state_dict``/``load_state_dict``, kept on the accelerator's device) its ``<name>.safetensors``; return
    the step to start from (0 for a fresh run)."""
    path, step = latest_checkpoint(out_dir)
    if path is not None:
        if pickled := sorted(p.name for p in path.glob("custom_checkpoint_*.pkl")):
            raise GenkitError(
                f"cannot resume from {path}: it keeps state as a pickle ({', '.join(pickled)}), which genkit "
                f"does not load; use a new --out or delete "
                f"{Path(out_dir) / 'checkpoints'}"
            )
        try:
            accelerator.load_state(str(path))
            for name, obj in (states or {}).items():
                obj.load_state_dict(load_state(path / f"{name}.safetensors", accelerator.device))
        except Exception as e:  # any failure to load: the checkpoint folder is the user's
            first = str(e).strip().splitlines()[-1].strip() if str(e).strip() else type(e).__name__
            mismatch = any(m in str(e) for m in ("size mismatch", "Missing key", "Unexpected key"))
            what = "a checkpoint of another model configuration" if mismatch else "it could not be loaded"
            raise GenkitError(
                f"cannot resume from {path}, {what} ({first}); "
                f"use a new --out or delete {Path(out_dir) / 'checkpoints'}"
            ) from e
        accelerator.print(f"resumed from {path} (step {step})")
    return step


def save_checkpoint(
    accelerator: Accelerator,
    out_dir: str | Path,
    step: int,
    keep: int = 2,
    states: dict[str, Any] | None = None,
) -> Path:
    """``accelerator.save_state`` into ``checkpoints/checkpoint-<step>`` atomically, with each of ``states``
    (name -> object with ``state_dict``) as ``<name>.safetensors``; keep the newest ``keep``."""
    root = Path(out_dir) / "checkpoints"
    final = root / f"checkpoint-{step}"
    tmp = root / f".tmp-checkpoint-{step}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp), safe_serialization=True)
    if accelerator.is_main_process:
        for name, obj in (states or {}).items():
            save_state(obj.state_dict(), tmp / f"{name}.safetensors")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        old = sorted(
            (p for p in root.iterdir() if _CKPT.match(p.name)), key=lambda p: int(p.name.split("-")[1])
        )
        for p in old[:-keep]:
            shutil.rmtree(p, ignore_errors=True)
    return final


def progress(accelerator: Accelerator, total: int, initial: int, desc: str) -> tqdm:
    """A tqdm bar (with ETA) on the main process only."""
    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        dynamic_ncols=True,
        disable=not accelerator.is_local_main_process,
    )


def save_model(accelerator: Accelerator, model, out_dir: str | Path, dtype: str) -> Path:
    """The end of a single-model trainer: ``model`` (a ``ModelMixin``) saved with ``save_pretrained`` in
    ``dtype`` ("fp32"/"fp16") into ``OUT/model`` atomically by the main process; returns that folder."""
    from genkit.utils import atomic_dir

    final = Path(out_dir) / "model"
    if accelerator.is_main_process:
        with atomic_dir(final) as tmp:
            model.eval().to(save_dtype(dtype)).save_pretrained(tmp, safe_serialization=True)
    accelerator.end_training()
    return final


def save_dtype(name: str) -> torch.dtype:
    return {"fp16": torch.float16, "fp32": torch.float32, "bf16": torch.bfloat16}[name]


def save_dtype_field(what: str = "model"):
    """The ``save_dtype`` field (``--save-dtype fp32|fp16``) of a training config."""
    return field(default="fp32", metadata={"help": f"dtype of the saved {what}", "choices": ["fp32", "fp16"]})


def device_field():
    """The ``device`` field (``--device auto|cpu|cuda|cuda:N``) of a training config."""
    return field(
        default="auto",
        metadata={
            "help": "'auto' (CUDA if available; each process's GPU under accelerate launch), 'cpu', 'cuda:1'"
        },
    )
