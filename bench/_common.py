"""What every benchmark shares: a record of the machine and an atomic JSON write."""

from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path

import torch

from genkit.utils import atomic_file


def cpu_model() -> str:
    """The processor's name (Linux: /proc/cpuinfo), else ``platform.processor()``: CPU timings and their
    ratios depend on it (a baseline's dense matrix products and a kernel's scalar loops do not scale alike)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


SIMD = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "asimd", "sve")


def cpu_details() -> dict:
    """What tells two processors of one marketing name apart (a VM may report just "AMD EPYC"): family,
    model and stepping, and the vector extensions that dense products and numba loops use (Linux)."""
    info: dict = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = (part.strip() for part in line.partition(":"))
            if key in ("cpu family", "model", "stepping") and key not in info:
                info[key] = value
            elif key in ("flags", "Features") and "simd" not in info:
                info["simd"] = [f for f in SIMD if f in value.split()]
    except OSError:
        pass
    return info


def machine(device: str) -> dict:
    info = {
        "device": device,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpu": cpu_model(),
        "cpu_details": cpu_details(),
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _strict(x):
    """NaN/inf (e.g. diversity with one image per prompt) -> None, so the file is strict JSON."""
    if isinstance(x, dict):
        return {k: _strict(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_strict(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def write_result(path: str | Path, result: dict) -> Path:
    """Write ``result`` as indented, strict JSON atomically and say where."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(out) as tmp:
        tmp.write_text(json.dumps(_strict(result), indent=2, allow_nan=False) + "\n")
    print(f"wrote {out}")
    return out
