"""ViewConditionedPipeline: Stable Diffusion whose prompts can carry a camera.

The camera (azimuth, elevation in degrees) becomes ``CameraEncoder`` tokens appended to the text
encoder's states (``view_states``); the UNet is a plain ``UNet2DConditionModel``. Without ``camera`` the
pipeline is exactly diffusers' ``StableDiffusionPipeline``; with it, the prompt and the negative (empty)
prompt both carry the camera, so classifier-free guidance acts on the text only, as the prior was trained
(captions dropped with the camera kept, and the camera dropped on its own).

Examples:
    >>> pipe = ViewConditionedPipeline.from_pretrained("runs/view-prior/model")
    >>> pipe("side view of a red cube", camera=(90.0, 15.0), num_inference_steps=25).images[0]
"""

from __future__ import annotations

import torch
from diffusers import StableDiffusionPipeline

from genkit.models.camera import CameraEncoder
from genkit.models.text import tokenize

__all__ = ["ViewConditionedPipeline", "view_states"]


def view_states(text_encoder, tokenizer, camera_encoder, prompts: list[str], cameras) -> torch.Tensor:
    """Text states of ``prompts`` with their cameras' tokens appended; ``cameras`` (B, 2) in degrees, or
    None for no camera tokens."""
    states = text_encoder(tokenize(tokenizer, prompts).to(text_encoder.device))[0]
    if cameras is None:
        return states
    cams = torch.as_tensor(cameras, dtype=torch.float32).reshape(-1, 2).expand(len(prompts), 2)
    return torch.cat([states, camera_encoder(cams).to(states.dtype)], dim=1)


class ViewConditionedPipeline(StableDiffusionPipeline):
    _optional_components = ["safety_checker", "feature_extractor", "image_encoder", "camera_encoder"]

    def __init__(
        self,
        vae,
        text_encoder,
        tokenizer,
        unet,
        scheduler,
        camera_encoder: CameraEncoder | None = None,
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker: bool = False,
    ):
        super().__init__(
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            unet=unet,
            scheduler=scheduler,
            safety_checker=None,
            feature_extractor=None,
            image_encoder=None,
            requires_safety_checker=False,
        )
        self.register_modules(camera_encoder=camera_encoder)

    @torch.no_grad()
    def __call__(self, prompt=None, camera=None, negative_prompt=None, **kwargs):
        """``camera``: (azimuth, elevation) in degrees, or one pair per prompt; everything else as
        ``StableDiffusionPipeline.__call__``."""
        if camera is None or self.camera_encoder is None:
            if camera is not None:
                raise ValueError("this pipeline has no camera encoder; call it without camera")
            return super().__call__(prompt=prompt, negative_prompt=negative_prompt, **kwargs)
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        negative = negative_prompt or ""
        negatives = [negative] * len(prompts) if isinstance(negative, str) else list(negative)
        args = (self.text_encoder, self.tokenizer, self.camera_encoder)
        return super().__call__(
            prompt_embeds=view_states(*args, prompts, camera),
            negative_prompt_embeds=view_states(*args, negatives, camera),
            **kwargs,
        )
