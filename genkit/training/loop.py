"""Pieces shared by every genkit training loop: accelerator set-up, resumable checkpoints, progress.

The loops themselves (``genkit/training/{vae,text2img,classifier}.py``) stay readable top to bottom and
call these. Checkpoints are accelerate's ``save_state`` folders named ``checkpoint-<step>``; a new one is
written to a temporary folder and renamed, so a run killed at any moment resumes from the last complete
checkpoint and loses at most one checkpoint interval.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration, set_seed
from tqdm.auto import tqdm

from genkit.utils import GenkitError

_CKPT = re.compile(r"^checkpoint-(\d+)$")


def make_accelerator(out_dir: str | Path, seed: int, mixed_precision: str = "no") -> Accelerator:
    out = Path(out_dir)
    accelerator = Accelerator(
        mixed_precision=mixed_precision,
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


def resume(accelerator: Accelerator, out_dir: str | Path) -> int:
    """Load the newest checkpoint if there is one; return the step to start from (0 for a fresh run)."""
    path, step = latest_checkpoint(out_dir)
    if path is not None:
        try:
            accelerator.load_state(str(path))
        except (RuntimeError, ValueError) as e:  # another model's checkpoint (shapes, keys)
            first = str(e).strip().splitlines()[-1].strip()
            raise GenkitError(
                f"cannot resume from {path}, a checkpoint of another model configuration ({first}); "
                f"use a new --out or delete {Path(out_dir) / 'checkpoints'}"
            ) from e
        accelerator.print(f"resumed from {path} (step {step})")
    return step


def save_checkpoint(accelerator: Accelerator, out_dir: str | Path, step: int, keep: int = 2) -> Path:
    """``accelerator.save_state`` into ``checkpoints/checkpoint-<step>`` atomically; keep the newest ``keep``."""
    root = Path(out_dir) / "checkpoints"
    final = root / f"checkpoint-{step}"
    tmp = root / f".tmp-checkpoint-{step}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp), safe_serialization=True)
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


def save_dtype(name: str) -> torch.dtype:
    return {"fp16": torch.float16, "fp32": torch.float32, "bf16": torch.bfloat16}[name]


def save_dtype_field(what: str = "model"):
    """The ``save_dtype`` field (``--save-dtype fp32|fp16``) of a training config."""
    return field(default="fp32", metadata={"help": f"dtype of the saved {what}", "choices": ["fp32", "fp16"]})
