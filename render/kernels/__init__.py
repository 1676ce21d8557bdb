"""Accelerated kernels of the renderer. The torch code in ``genkit.render`` is the reference; each kernel
here is tested for parity against it (on the CPU with ``TRITON_INTERPRET=1``)."""

from __future__ import annotations

import functools
import os


@functools.cache
def triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def triton_usable(device) -> bool:
    """Triton runs compiled on CUDA devices, and on the CPU only under its interpreter."""
    import torch

    if not triton_available():
        return False
    return torch.device(device).type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"
