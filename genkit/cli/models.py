"""``genkit models``: the bundled models, their folders and how to reproduce them."""

from __future__ import annotations


def run(_ns) -> int:
    from genkit.assets import bundled_models

    for name, info in bundled_models().items():
        default = " (default)" if info.get("default") else ""
        if info.get("aliases"):
            default = f" (alias: {', '.join(info['aliases'])})" + default
        print(
            f"{name}{default}\n  kind: {info['kind']}\n  path: {info['path']}\n  {info['description']}\n  reproduce: {info['reproduce']}"
        )
    return 0


def register(sub) -> None:
    p = sub.add_parser("models", help="list bundled models and their paths", description=__doc__)
    p.set_defaults(run=run)
