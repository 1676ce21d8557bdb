"""SignMotionPipeline: text -> a sentence of SMPL-X poses and expressions, by diffusion.

Components: ``model`` (``genkit.models.sign_motion.SignMotionTransformer``, predicting the clean motion),
``text_encoder`` and ``tokenizer`` (a small CLIP text encoder over the glosses), ``scheduler`` (any diffusers
scheduler configured with ``prediction_type="sample"``; DPM-Solver++ by default). Classifier-free guidance
against the empty prompt, ``guidance_scale`` in diffusers' convention (1: none).

Examples:
    >>> pipe = SignMotionPipeline.from_pretrained("genkit/assets/sign-motion")
    >>> out = pipe(["hello thanks house"], num_inference_steps=20, generator=torch.Generator().manual_seed(0))
    >>> out.pose.shape, out.expression.shape   # (1, 48, 55, 3) axis-angle, (1, 48, 10)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput

from genkit.data.signs import from_features
from genkit.models.sign_motion import SignMotionTransformer
from genkit.models.text import tokenize

__all__ = ["SignMotionOutput", "SignMotionPipeline"]


@dataclass
class SignMotionOutput(BaseOutput):
    motion: torch.Tensor  # (B, T, 340) raw features
    pose: torch.Tensor  # (B, T, 55, 3) axis-angle
    expression: torch.Tensor  # (B, T, 10)


class SignMotionPipeline(DiffusionPipeline):
    model_cpu_offload_seq = "text_encoder->model"

    def __init__(self, model: SignMotionTransformer, text_encoder, tokenizer, scheduler):
        super().__init__()
        self.register_modules(
            model=model, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler
        )

    @torch.no_grad()
    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        return self.text_encoder(tokenize(self.tokenizer, prompts).to(self.device))[0]

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        num_inference_steps: int = 20,
        guidance_scale: float = 2.5,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        return_dict: bool = True,
    ):
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        b, model = len(prompts), self.model
        shape = (b, model.config.frames, model.feature_mean.numel())
        cond = self.encode_text(prompts)
        null = self.encode_text([""] * b)
        if latents is None:
            from diffusers.utils.torch_utils import randn_tensor

            latents = randn_tensor(shape, generator=generator, device=self.device, dtype=cond.dtype)
        x = latents * self.scheduler.init_noise_sigma
        self.scheduler.set_timesteps(num_inference_steps, device=self.device)
        states = torch.cat([null, cond]) if guidance_scale != 1 else cond
        for t in self.progress_bar(self.scheduler.timesteps):
            inp = self.scheduler.scale_model_input(torch.cat([x, x]) if guidance_scale != 1 else x, t)
            pred = model(inp, t, states)
            if guidance_scale != 1:
                uncond, text = pred.chunk(2)
                pred = uncond + guidance_scale * (text - uncond)
            x = self.scheduler.step(pred, t, x).prev_sample
        motion = model.denormalize(x).float()
        pose, expression = from_features(motion)
        if not return_dict:
            return motion, pose, expression
        return SignMotionOutput(motion=motion, pose=pose, expression=expression)
