"""TextDiT2DModel: the DiT baseline for FPDM, with the same blocks, width and conditioning.

``depth`` explicit adaLN-Zero blocks (with cross-attention to text) between the same patch/timestep/text
embedding and final layer as :class:`~genkit.models.transformer_fpdm.FPDMTransformer2DModel`. Its forward
takes (and ignores) the fixed-point arguments and returns the same output type, so ``FPDMPipeline``,
``genkit train fpdm --arch dit`` and the benchmark treat both models alike.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config

from genkit.models.transformer_fpdm import FinalLayer, FPDMBlock, FPDMTransformerOutput, TextConditionedEmbed


class TextDiT2DModel(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(
        self,
        sample_size: int = 16,
        patch_size: int = 2,
        in_channels: int = 4,
        out_channels: int | None = None,
        hidden_size: int = 128,
        num_attention_heads: int = 4,
        depth: int = 8,
        mlp_ratio: float = 4.0,
        cross_attention_dim: int = 64,
        head_channels: int = 0,
    ):
        super().__init__()
        out_channels = out_channels or in_channels
        self.embed = TextConditionedEmbed(
            sample_size, patch_size, in_channels, hidden_size, cross_attention_dim
        )
        self.blocks = nn.ModuleList(
            FPDMBlock(hidden_size, num_attention_heads, mlp_ratio, cross_attention_dim) for _ in range(depth)
        )
        self.final = FinalLayer(hidden_size, patch_size, out_channels, sample_size, head_channels)

    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep,
        encoder_hidden_states: torch.Tensor,
        return_dict: bool = True,
        **_fixed_point_args,
    ) -> FPDMTransformerOutput | tuple:
        x, c = self.embed(hidden_states, timestep, encoder_hidden_states)
        for blk in self.blocks:
            x = blk(x, c, encoder_hidden_states)
        out = self.final(x, c)
        if not return_dict:
            return (out, None, [], len(self.blocks))
        return FPDMTransformerOutput(
            sample=out, solution=None, residuals=[], block_evaluations=len(self.blocks)
        )
