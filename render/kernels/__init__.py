"""Accelerated kernels of the renderer. The torch code in ``genkit.render`` is the reference; each kernel
here is tested for parity against it (Triton on the CPU with ``TRITON_INTERPRET=1``; the numba kernels of
the avatar's real-time CPU path directly)."""

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


@functools.cache
def numba_available() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def use_numba(x, backend: str) -> bool:
    """Whether a CPU kernel of ``numba_avatar`` runs: ``backend`` "numba", or "auto" for CPU tensors when
    no gradient is wanted and numba is installed ("torch": never)."""
    import torch

    if backend not in ("auto", "torch", "numba"):
        raise ValueError(f"backend must be 'auto', 'torch' or 'numba', got {backend!r}")
    if backend != "auto":
        return backend == "numba"
    return x.device.type == "cpu" and not torch.is_grad_enabled() and numba_available()
