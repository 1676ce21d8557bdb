"""Text-to-video: genkit's video model is a plain diffusers ``AnimateDiffPipeline`` (a Stable Diffusion
pipeline whose UNet is a ``UNetMotionModel``; ``genkit train video`` writes one).

As for images, nothing re-implements sampling: this module loads a folder with a chosen scheduler and
turns a batch of prompts into clips, one seeded generator per clip (clip j of a prompt uses seed + j,
whatever the batch). genkit's video models are trained on mixed noise (a share of each clip's noise common
to its frames); ``generate_clips`` draws the initial latents from the same prior (``video_noise``) and
hands them to the pipeline. A plain ``AnimateDiffPipeline`` call draws independent noise per frame: it
runs, with less coherent clips.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from diffusers import AnimateDiffPipeline

from genkit.pipelines.text2img import set_scheduler

__all__ = ["generate_clips", "load_video", "trained_noise_shared", "video_noise"]


def video_noise(
    shape, shared: float, generator: torch.Generator | None = None, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """Noise of clips ``shape`` = (N, C, T, h, w) with a fraction ``shared`` of its variance common to the
    frames of a clip (PYoCo's mixed noise); each frame's noise is N(0, I) whatever ``shared``."""
    n, c, _, h, w = shape
    common = torch.randn((n, c, 1, h, w), generator=generator, device=device)
    own = torch.randn(tuple(shape), generator=generator, device=device)
    return shared**0.5 * common + (1 - shared) ** 0.5 * own


def trained_noise_shared(path: str | os.PathLike) -> float:
    """The ``noise_shared`` a video model was trained with (its ``training.json``; 0 when absent)."""
    info = Path(path) / "training.json"
    return float(json.loads(info.read_text()).get("noise_shared", 0.0)) if info.is_file() else 0.0


def load_video(
    path: str | os.PathLike,
    scheduler: str | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> AnimateDiffPipeline:
    """Load any diffusers AnimateDiff folder onto ``device`` in ``dtype`` (fp16 weights are upcast)."""
    pipe = AnimateDiffPipeline.from_pretrained(str(path))
    set_scheduler(pipe, scheduler)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device=device, dtype=dtype)


@torch.no_grad()
def generate_clips(
    pipe: AnimateDiffPipeline,
    prompts: list[str],
    seeds: list[int],
    frames: int = 16,
    steps: int = 25,
    guidance: float = 4.0,
    noise_shared: float = 0.0,
    reverse_noise: bool = False,
) -> torch.Tensor:
    """Clips (N, T, 3, H, W) in [-1, 1], clip i from ``prompts[i]`` with ``seeds[i]``, at the UNet's size,
    from ``video_noise`` with ``noise_shared`` (the model's ``trained_noise_shared``). ``reverse_noise``
    gives each frame the noise of the frame at the mirror position (a diagnostic: a model whose motion
    follows the caption keeps its direction, one whose motion follows the noise reverses it)."""
    size = pipe.unet.config.sample_size * pipe.vae_scale_factor
    c, h = pipe.unet.config.in_channels, size // pipe.vae_scale_factor
    latents = torch.cat(
        [
            video_noise((1, c, frames, h, h), noise_shared, torch.Generator("cpu").manual_seed(s))
            for s in seeds
        ]
    )
    if reverse_noise:
        latents = latents.flip(2)
    out = pipe(
        prompts,
        num_frames=frames,
        height=size,
        width=size,
        num_inference_steps=steps,
        guidance_scale=guidance,
        latents=latents.to(pipe.device, pipe.unet.dtype),
        output_type="pt",
    ).frames
    return (out.float().cpu() * 2 - 1).clamp(-1, 1)
