"""The oracle: a small CNN that reads shape, colour, position and size off a shapes image.

It is genkit's measuring instrument for the procedural data: its predictions give prompt accuracy, its
penultimate features give the Fréchet distance ("FD"), precision/recall and diversity. It is trained on
every attribute combination (held-out pairs included) by ``genkit train classifier``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config

HEADS = ("shape", "color", "position", "size")


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1),
        nn.GroupNorm(8, cout),
        nn.SiLU(),
        nn.Conv2d(cout, cout, 3, padding=1),
        nn.GroupNorm(8, cout),
        nn.SiLU(),
        nn.MaxPool2d(2),
    )


class AttributeHeads:
    """A small CNN trunk, a ``feature_dim`` feature vector and one linear head per attribute: the shared
    body of genkit's image classifiers (mixed into a ``ModelMixin``; ``heads`` name -> classes)."""

    def _build(self, resolution: int, width: int, feature_dim: int, heads: dict[str, int]) -> None:
        self.trunk = nn.Sequential(_block(3, width), _block(width, 2 * width), _block(2 * width, 4 * width))
        side = resolution // 8
        # Flatten (not pool) so that the features keep where things are.
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(4 * width * side * side, feature_dim), nn.SiLU())
        self.heads = nn.ModuleDict({k: nn.Linear(feature_dim, n) for k, n in heads.items()})

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.embed(self.trunk(images))

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.features(images)
        out = {k: head(f) for k, head in self.heads.items()}
        out["features"] = f
        return out

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = 256) -> dict[str, torch.Tensor]:
        """Predicted class indices per head and features, in batches, on the model's device."""
        outs: dict[str, list[torch.Tensor]] = {k: [] for k in (*self.heads, "features")}
        for i in range(0, len(images), batch_size):
            o = self(images[i : i + batch_size].to(self.device, self.dtype))
            for k in self.heads:
                outs[k].append(o[k].argmax(-1).cpu())
            outs["features"].append(o["features"].float().cpu())
        return {k: torch.cat(v) for k, v in outs.items()}


class ShapesClassifier(AttributeHeads, ModelMixin, ConfigMixin):
    """Images in [-1, 1], (B, 3, R, R) -> logits per attribute and a ``feature_dim`` feature vector."""

    @register_to_config
    def __init__(
        self,
        resolution: int = 32,
        width: int = 32,
        feature_dim: int = 128,
        num_shapes: int = 4,
        num_colors: int = 5,
        num_positions: int = 5,
        num_sizes: int = 2,
    ):
        super().__init__()
        self._build(
            resolution,
            width,
            feature_dim,
            {"shape": num_shapes, "color": num_colors, "position": num_positions, "size": num_sizes},
        )
