"""The video model: AnimateDiff motion modules on a Stable Diffusion UNet, and the words that motion needs.

``video_unet(unet2d)`` builds a diffusers ``MotionAdapter`` matching the UNet's blocks, zero-initialises the
output projection of every motion module (each is a residual temporal transformer, so it starts as the
identity) and inserts it with ``UNetMotionModel.from_unet2d``: the untrained video model is the image
model applied to every frame. ``freeze_unet2d_params`` then leaves only the motion modules trainable.

``add_words(tokenizer, text_encoder, words)`` adds the caption words the image tokenizer does not know
("moving", "up", "growing"...) as new tokens with new embedding rows (initialised from the mean of the
existing ones); ``NewRowsOnly`` masks the gradient of the old rows so that every image prompt still
encodes exactly as before.

``add_image_lora(unet, rank)`` puts a zero-initialised peft LoRA on the image layers' cross-attention
(``IMAGE_CROSS_ATTENTION``) or on all their projections and convolutions (``IMAGE_LAYERS``), trained with
the motion modules; ``image_unet_of`` fuses it back into a plain ``UNet2DConditionModel`` for export.
"""

from __future__ import annotations

import torch
from diffusers import MotionAdapter, UNet2DConditionModel, UNetMotionModel
from tokenizers import AddedToken

__all__ = [
    "IMAGE_CROSS_ATTENTION",
    "IMAGE_LAYERS",
    "IMAGE_LORA_TARGETS",
    "NewRowsOnly",
    "add_image_lora",
    "add_words",
    "image_unet_of",
    "motion_adapter_of",
    "video_unet",
    "zero_motion_outputs",
]

# the projections of the image layers' cross-attention (the text's only way in); not those of the motion
# modules, whose ``attn2`` is a second attention over frames
IMAGE_CROSS_ATTENTION = r"^(?!.*motion_modules).*\.attn2\.(to_q|to_k|to_v|to_out\.0)$"
# every projection of the image layers' attention and feed-forward, and their resnets' convolutions: what
# lays out the shapes (their size, where they go), not only what the text says
IMAGE_LAYERS = (
    r"^(?!.*motion_modules).*\."
    r"(attn[12]\.(to_q|to_k|to_v|to_out\.0)|ff\.net\.(0\.proj|2)|resnets\.\d+\.conv[12])$"
)
# ``genkit train video --image-lora-layers``
IMAGE_LORA_TARGETS = {"cross-attention": IMAGE_CROSS_ATTENTION, "all": IMAGE_LAYERS}


def zero_motion_outputs(model: MotionAdapter | UNetMotionModel) -> MotionAdapter | UNetMotionModel:
    """Zero the ``proj_out`` of every motion module of a ``MotionAdapter`` or a ``UNetMotionModel``: each
    then adds nothing to its input (a UNetMotionModel becomes its image model on every frame)."""
    for name, module in model.named_modules():
        if "motion_modules" in name and name.endswith("proj_out"):
            torch.nn.init.zeros_(module.weight)
            torch.nn.init.zeros_(module.bias)
    return model


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


def add_image_lora(unet: UNetMotionModel, rank: int, target_modules: str = IMAGE_CROSS_ATTENTION) -> None:
    """A peft LoRA of ``rank`` on ``target_modules`` of ``unet``'s image layers (a regex; by default their
    cross-attention, AnimateDiff v3's "domain adapter" on the text path; ``IMAGE_LAYERS``: all of them),
    trainable with the motion modules; the image weights stay frozen. LoRA's B starts at zero, so the
    untrained model is still the image model on every frame."""
    from peft import LoraConfig

    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=target_modules))
    for name, p in unet.named_parameters():  # peft froze everything but the LoRA
        if "motion_modules" in name:
            p.requires_grad_(True)


def image_unet_of(unet: UNetMotionModel, like: UNet2DConditionModel) -> UNet2DConditionModel:
    """The image layers of ``unet`` as a ``UNet2DConditionModel`` shaped as ``like``: what an AnimateDiff
    folder stores as ``unet/`` next to its ``motion_adapter/``. A LoRA on ``unet`` is fused into its
    weights first and the adapter removed (``unet`` itself keeps computing the same function)."""
    if getattr(unet, "peft_config", None):
        unet.fuse_lora()
        unet.unload_lora()
    image = UNet2DConditionModel.from_config(like.config).to(unet.device, unet.dtype)
    image.load_state_dict({k: v for k, v in unet.state_dict().items() if "motion_modules" not in k})
    return image.eval()


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
