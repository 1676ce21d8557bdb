"""Text-to-image: genkit's embedded model is a plain diffusers ``StableDiffusionPipeline``.

Nothing here re-implements sampling: the pipeline, its schedulers and its CFG are diffusers' own. This
module only assembles a pipeline from genkit's components and loads one from a folder with a chosen
scheduler.
"""

from __future__ import annotations

import os

import torch
from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    StableDiffusionPipeline,
)

__all__ = ["SCHEDULERS", "build_text2img_pipeline", "load_text2img", "set_scheduler"]

# CLI name -> diffusers scheduler class (swapped with ``from_config``, as diffusers documents).
SCHEDULERS = {"ddim": DDIMScheduler, "dpm": DPMSolverMultistepScheduler, "euler": EulerDiscreteScheduler}


def build_text2img_pipeline(vae, text_encoder, tokenizer, unet, scheduler) -> StableDiffusionPipeline:
    """A Stable Diffusion pipeline from components, without safety checker or image processor."""
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def set_scheduler(pipe: StableDiffusionPipeline, name: str | None) -> StableDiffusionPipeline:
    if name is not None:
        pipe.scheduler = SCHEDULERS[name].from_config(pipe.scheduler.config)
    return pipe


def load_text2img(
    path: str | os.PathLike,
    scheduler: str | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    pipeline_class: type[StableDiffusionPipeline] = StableDiffusionPipeline,
) -> StableDiffusionPipeline:
    """Load any diffusers Stable Diffusion folder (genkit's bundled one included) onto ``device``.

    Weights shipped in fp16 are upcast to ``dtype`` (fp32 on CPU, where fp16 kernels are slow).
    On CUDA, attention runs through torch SDPA (diffusers' default) or xformers when it is installed.
    """
    pipe = pipeline_class.from_pretrained(
        str(path), safety_checker=None, feature_extractor=None, requires_safety_checker=False
    )
    set_scheduler(pipe, scheduler)
    pipe.set_progress_bar_config(disable=True)
    pipe = pipe.to(device=device, dtype=dtype)  # one dtype for every component, whatever each config says
    if torch.device(device).type == "cuda":
        try:
            import xformers  # noqa: F401

            pipe.enable_xformers_memory_efficient_attention()
        except ImportError:
            pass  # torch SDPA (AttnProcessor2_0) is diffusers' default
    return pipe
