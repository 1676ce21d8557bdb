"""The video model: AnimateDiff motion modules on a Stable Diffusion UNet, and the words that motion needs.

``video_unet(unet2d)`` builds a diffusers ``MotionAdapter`` matching the UNet's blocks, zero-initialises the
output projection of every motion module (each is a residual temporal transformer, so it starts as the
identity) and inserts it with ``UNetMotionModel.from_unet2d``: the untrained video model is the image
model applied to every frame. ``freeze_unet2d_params`` then leaves only the motion modules trainable.

``add_words(tokenizer, text_encoder, words)`` adds the caption words the image tokenizer does not know
("moving", "up", "growing"...) as new tokens with new embedding rows (initialised from the mean of the
existing ones); ``NewRowsOnly`` masks the gradient of the old rows so that every image prompt still
encodes exactly as before.
"""

from __future__ import annotations

import torch
from diffusers import MotionAdapter, UNet2DConditionModel, UNetMotionModel
from tokenizers import AddedToken

__all__ = ["NewRowsOnly", "add_words", "motion_adapter_of", "video_unet", "zero_motion_outputs"]


def zero_motion_outputs(adapter: MotionAdapter) -> MotionAdapter:
    """Zero the ``proj_out`` of every motion module: each then adds nothing to its input."""
    for name, module in adapter.named_modules():
        if name.endswith("proj_out"):
            torch.nn.init.zeros_(module.weight)
            torch.nn.init.zeros_(module.bias)
    return adapter


def video_unet(
    unet2d: UNet2DConditionModel, heads: int = 4, max_frames: int = 32, mid_block: bool = True
) -> UNetMotionModel:
    """``unet2d`` with one zero-initialised motion module after each of its resnet/attention layers
    (``heads`` attention heads over time, sinusoidal positions up to ``max_frames``)."""
    c = unet2d.config
    adapter = MotionAdapter(
        block_out_channels=tuple(c.block_out_channels),
        motion_layers_per_block=c.layers_per_block,
        motion_num_attention_heads=heads,
        motion_norm_num_groups=c.norm_num_groups,
        motion_max_seq_length=max_frames,
        use_motion_mid_block=mid_block,
    )
    return UNetMotionModel.from_unet2d(unet2d, zero_motion_outputs(adapter))


def motion_adapter_of(unet: UNetMotionModel) -> MotionAdapter:
    """The motion modules of ``unet`` as a ``MotionAdapter`` (what ``UNetMotionModel.save_motion_modules``
    writes, as an object): with the image UNet it came from, ``from_unet2d`` rebuilds ``unet``."""
    c = unet.config
    adapter = MotionAdapter(
        block_out_channels=tuple(c.block_out_channels),
        motion_layers_per_block=c.layers_per_block,
        motion_num_attention_heads=c.motion_num_attention_heads,
        motion_norm_num_groups=c.norm_num_groups,
        motion_max_seq_length=c.motion_max_seq_length,
        use_motion_mid_block=c.use_motion_mid_block,
    )
    adapter.load_state_dict({k: v for k, v in unet.state_dict().items() if "motion_modules" in k})
    return adapter.to(unet.device, unet.dtype)


def add_words(tokenizer, text_encoder, words) -> list[str]:
    """Add the ``words`` the tokenizer lacks as tokens, with embedding rows at the mean of the old ones;
    return the words added."""
    vocab = tokenizer.get_vocab()
    new = sorted({w for w in words if w not in vocab})
    if new:
        old = text_encoder.get_input_embeddings().weight.shape[0]
        tokenizer.add_tokens([AddedToken(w, single_word=True) for w in new])
        text_encoder.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        emb = text_encoder.get_input_embeddings().weight
        with torch.no_grad():
            emb[old:] = emb[:old].mean(0, keepdim=True)
    return new


class NewRowsOnly:
    """A gradient hook on an embedding matrix that zeroes the gradient of its first ``old_rows`` rows:
    ``emb.weight.register_hook(NewRowsOnly(old_rows))``. (Weight decay must be off for the matrix too.)"""

    def __init__(self, old_rows: int):
        self.old_rows = old_rows

    def __call__(self, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        grad[: self.old_rows] = 0
        return grad
