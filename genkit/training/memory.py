"""Training memory, measured rather than estimated.

``saved_activation_bytes`` runs a forward/backward under ``torch.autograd.graph.saved_tensors_hooks`` and
adds up the distinct storages autograd keeps for backward, leaving out the parameters (they are resident
anyway). ``optimizer_bytes`` is what AdamW training keeps per parameter: the weight, its gradient and two
moments. Their sum is the per-step training memory of a model at a given batch, independent of the
allocator and the device, so CPU and GPU runs report the same figure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

__all__ = ["saved_activation_bytes", "optimizer_bytes"]


def saved_activation_bytes(fn: Callable[[], object], exclude: Iterable[torch.Tensor] = ()) -> int:
    """Bytes of the distinct tensor storages saved for backward while ``fn()`` runs, without those of
    ``exclude`` (pass the model's parameters)."""
    seen = {p.untyped_storage().data_ptr() for p in exclude}
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        storage = t.untyped_storage()
        if storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            total += storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return total


def optimizer_bytes(params: Iterable[torch.Tensor], states_per_param: int = 2) -> int:
    """Weights + gradients + ``states_per_param`` optimizer states (2 for Adam/AdamW), in the weights' dtype."""
    return sum(p.numel() * p.element_size() * (2 + states_per_param) for p in params if p.requires_grad)
