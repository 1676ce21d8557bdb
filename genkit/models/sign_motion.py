"""SignMotionTransformer: the denoiser of genkit's text-to-sign-motion diffusion.

After Neural Sign Actors (Baltatzis et al., CVPR 2024): each frame's pose goes through a **skeleton-graph
encoder** (graph convolutions over the SMPL-X joint tree, the joints' 6-D rotations as node features) and
the expression through an MLP; the text conditions the motion. Where the paper decodes with an
autoregressive RNN, the frames here attend to each other and to the text states in a transformer decoder
(MDM-style), which denoises the whole sentence at once. It predicts the clean motion ``x0`` (the
scheduler's ``prediction_type="sample"``) in normalised feature space; ``feature_mean``/``feature_std``
(buffers, saved with the weights) map to and from the raw features of ``genkit.data.signs``.

    x (B, T, 55*6 + 10) --graph encoder per frame + expression MLP + time + position--> (B, T, H)
      --N x [self-attention over frames, cross-attention to text, MLP]--> (B, T, 340)
"""

from __future__ import annotations

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from torch import nn

__all__ = ["SignMotionTransformer", "skeleton_adjacency"]


def skeleton_adjacency(parents: list[int]) -> torch.Tensor:
    """Symmetrically normalised adjacency with self-loops, D^-1/2 (A + I) D^-1/2, of a joint tree."""
    n = len(parents)
    a = torch.eye(n)
    for c, p in enumerate(parents):
        if p >= 0:
            a[c, p] = a[p, c] = 1.0
    d = a.sum(1).rsqrt()
    return d[:, None] * a * d[None, :]


class GraphConv(nn.Module):
    """h' = SiLU(W_self h + W_nb (A h)) over the joints of every frame."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.self_ = nn.Linear(dim_in, dim_out)
        self.neighbours = nn.Linear(dim_in, dim_out)

    def forward(self, h: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        return nn.functional.silu(self.self_(h) + self.neighbours(adjacency @ h))


class SignMotionTransformer(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(
        self,
        parents: tuple[int, ...] | list[int] = (),
        joint_dim: int = 6,
        expression_dim: int = 10,
        frames: int = 48,
        graph_dim: int = 16,
        hidden: int = 128,
        layers: int = 4,
        heads: int = 4,
        text_dim: int = 64,
        dropout: float = 0.0,
    ):
        super().__init__()
        if not parents:
            from genkit.data.skeleton import PARENTS

            parents = PARENTS
        self.num_joints = len(parents)
        self.register_buffer("adjacency", skeleton_adjacency(list(parents)), persistent=False)
        feature_dim = self.num_joints * joint_dim + expression_dim
        self.register_buffer("feature_mean", torch.zeros(feature_dim))
        self.register_buffer("feature_std", torch.ones(feature_dim))

        self.joint_in = nn.Linear(joint_dim, graph_dim)
        self.graph = nn.ModuleList([GraphConv(graph_dim, graph_dim) for _ in range(2)])
        self.pose_out = nn.Linear(self.num_joints * graph_dim, hidden)
        self.expression = nn.Sequential(
            nn.Linear(expression_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden)
        )
        self.position = nn.Parameter(torch.randn(frames, hidden) * 0.02)
        self.time_proj = Timesteps(hidden, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embed = TimestepEmbedding(hidden, hidden)
        self.text_in = nn.Linear(text_dim, hidden)
        layer = nn.TransformerDecoderLayer(
            hidden, heads, 4 * hidden, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.decoder = nn.TransformerDecoder(layer, layers)
        self.norm_out = nn.LayerNorm(hidden)
        self.proj_out = nn.Linear(hidden, feature_dim)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.feature_mean) / self.feature_std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.feature_std + self.feature_mean

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``sample`` (B, T, F) normalised noisy motion, ``timestep`` (B,) or scalar, text states (B, L, D)
        with an optional (B, L) mask (1: attend) -> predicted clean motion (B, T, F), normalised."""
        b, t, _ = sample.shape
        joints = sample[..., : self.num_joints * self.config.joint_dim].unflatten(
            -1, (self.num_joints, self.config.joint_dim)
        )
        h = self.joint_in(joints)
        for conv in self.graph:
            h = h + conv(h, self.adjacency)
        x = self.pose_out(h.flatten(-2)) + self.expression(
            sample[..., self.num_joints * self.config.joint_dim :]
        )
        timestep = torch.as_tensor(timestep, device=sample.device).reshape(-1).expand(b)
        temb = self.time_embed(self.time_proj(timestep).to(x.dtype))
        x = x + self.position[:t] + temb[:, None]
        memory = self.text_in(encoder_hidden_states)
        pad = None if encoder_attention_mask is None else encoder_attention_mask == 0
        x = self.decoder(x, memory, memory_key_padding_mask=pad)
        return self.proj_out(self.norm_out(x))
