"""Bundled models, shipped inside the package as fp16 safetensors in diffusers format.

``index.json`` maps a model name to its folder (relative to this package), what it is, and the exact
``genkit train`` command that reproduces it. A plain dict, no registry.
"""

from __future__ import annotations

import json
from pathlib import Path

ASSETS_DIR = Path(__file__).parent


def bundled_models() -> dict[str, dict]:
    """name -> {"path": absolute folder, "kind", "description", "reproduce"}."""
    index = json.loads((ASSETS_DIR / "index.json").read_text())
    return {name: {**info, "path": str(ASSETS_DIR / info["folder"])} for name, info in index.items()}
