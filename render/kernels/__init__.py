"""Accelerated kernels of the renderer. The torch code in ``genkit.render`` is the reference; each kernel
here is tested for parity against it (Triton on the CPU with ``TRITON_INTERPRET=1``; the numba kernels of
the avatar's real-time CPU path directly).

The avatar's code takes a ``backend``: "auto" (numba's kernels for CPU tensors without gradients, the
Triton table lookups on CUDA), "torch" (the reference everywhere), "numba" or "triton" (forced)."""

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


BACKENDS = ("auto", "torch", "numba", "triton")


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}")


def use_numba(x, backend: str) -> bool:
    """Whether a CPU kernel of ``numba_avatar`` runs: ``backend`` "numba", or "auto" for CPU tensors when
    no gradient is wanted and numba is installed ("torch", "triton": never)."""
    import torch

    _check_backend(backend)
    if backend != "auto":
        return backend == "numba"
    return x.device.type == "cpu" and not torch.is_grad_enabled() and numba_available()


def use_triton(x, backend: str) -> bool:
    """Whether the avatar's table lookups run the Triton kernel of ``triton_hashgrid``: ``backend``
    "triton" (an error without triton), or "auto" for CUDA tensors with triton installed."""
    _check_backend(backend)
    if backend == "triton":
        if not triton_available():
            raise RuntimeError("backend='triton' needs the triton package (pip install triton)")
        return True
    return backend == "auto" and x.device.type == "cuda" and triton_usable(x.device)
