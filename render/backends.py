"""Which code runs: the one place that picks between the torch reference and the accelerated kernels.

Every renderer function and module that has kernels takes a ``backend``:

- ``"torch"``: the pure-torch reference (differentiable, any device); the tests compare the others to it;
- ``"triton"``: the Triton kernels of ``genkit.render.kernels`` (compiled on CUDA; on the CPU only under
  ``TRITON_INTERPRET=1``, for tests); an error without triton;
- ``"numba"``: the avatar's CPU kernels (inference only);
- ``"auto"`` (the default): Triton on CUDA when it is installed, numba for CPU tensors without gradients
  where a numba kernel exists and numba is installed, else torch.
"""

from __future__ import annotations

import functools
import os

import torch

__all__ = [
    "BACKENDS",
    "check_backend",
    "numba_available",
    "triton_available",
    "triton_usable",
    "use_numba",
    "use_triton",
]

BACKENDS = ("auto", "torch", "numba", "triton")


@functools.cache
def triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache
def numba_available() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def triton_usable(device) -> bool:
    """Triton runs compiled on CUDA devices, and on the CPU only under its interpreter."""
    if not triton_available():
        return False
    return torch.device(device).type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"


def check_backend(backend: str, allowed: tuple[str, ...] = BACKENDS) -> None:
    if backend not in allowed:
        raise ValueError(f"backend must be one of {', '.join(map(repr, allowed))}, got {backend!r}")


def use_numba(x: torch.Tensor, backend: str) -> bool:
    """Whether a numba CPU kernel runs on ``x``: ``backend`` "numba", or "auto" for CPU tensors when no
    gradient is wanted and numba is installed ("torch", "triton": never)."""
    check_backend(backend)
    if backend != "auto":
        return backend == "numba"
    return x.device.type == "cpu" and not torch.is_grad_enabled() and numba_available()


def use_triton(device, backend: str) -> bool:
    """Whether a Triton kernel runs on ``device``: ``backend`` "triton" (an error without triton), or
    "auto" on CUDA with triton installed ("torch", "numba": never)."""
    check_backend(backend)
    if backend == "triton":
        if not triton_available():
            raise RuntimeError("backend='triton' needs the triton package (pip install triton)")
        return True
    return backend == "auto" and torch.device(device).type == "cuda" and triton_usable(device)
