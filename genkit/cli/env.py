"""``genkit env``: versions and what accelerators are usable (CUDA, Triton, xformers)."""

from __future__ import annotations

import importlib.metadata as md
import platform


def _version(pkg: str) -> str:
    try:
        return md.version(pkg)
    except md.PackageNotFoundError:
        return "not installed"


def run(_ns) -> int:
    import torch

    print(f"python        {platform.python_version()} ({platform.machine()})")
    for pkg in (
        "genkit",
        "torch",
        "diffusers",
        "transformers",
        "accelerate",
        "safetensors",
        "tokenizers",
        "triton",
        "xformers",
    ):
        print(f"{pkg:<13} {_version(pkg)}")
    cuda = torch.cuda.is_available()
    print(
        f"cuda          {'available: ' + torch.cuda.get_device_name(0) if cuda else 'not available'} (torch built with CUDA {torch.version.cuda})"
    )
    print(f"cpu threads   {torch.get_num_threads()}")
    try:
        import triton  # noqa: F401

        print(
            f"triton        importable{'' if cuda else ' (CPU only: kernels run under TRITON_INTERPRET=1)'}"
        )
    except ImportError:
        print("triton        not importable")
    try:
        import xformers  # noqa: F401

        print("xformers      importable (used for attention on CUDA)")
    except ImportError:
        print("xformers      not importable (attention uses torch SDPA)")
    return 0


def register(sub) -> None:
    p = sub.add_parser("env", help="print versions and accelerator availability", description=__doc__)
    p.set_defaults(run=run)
