"""Text-to-video: genkit's video model is a plain diffusers ``AnimateDiffPipeline`` (a Stable Diffusion
pipeline whose UNet is a ``UNetMotionModel``; ``genkit train video`` writes one).

As for images, nothing re-implements sampling: this module loads a folder with a chosen scheduler and
turns a batch of prompts into clips, one seeded generator per clip (clip j of a prompt uses seed + j,
whatever the batch). genkit's video models are trained on mixed noise (a share of each clip's noise common
to its frames); ``generate_clips`` draws the initial latents from the same prior (``video_noise``) and
hands them to the pipeline. A model trained with ``--noise-warp`` also learned to put the shape where a
disc of that noise is carried (``video_noise(paths=...)``), so the caller chooses the shape's path; for the
bundled model ``genkit.data.video.prompt_path`` draws one from the prompt's motion words. A plain
``AnimateDiffPipeline`` call draws independent noise per frame: it runs, with less coherent clips and no
control of the motion.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from diffusers import AnimateDiffPipeline

from genkit.pipelines.text2img import set_scheduler

__all__ = [
    "generate_clips",
    "load_video",
    "path_discs",
    "trained_noise_shared",
    "trained_noise_warp",
    "video_noise",
]


PATH_PAD = 0.06  # the carried disc reaches this far (fraction of the side) beyond the shape's radius
PATH_SHARED = 0.9  # the share of the carried noise in the variance inside the disc


def video_noise(
    shape,
    shared: float,
    generator: torch.Generator | None = None,
    device: str | torch.device = "cpu",
    paths: list | None = None,
) -> torch.Tensor:
    """Noise of clips ``shape`` = (N, C, T, h, w) with a fraction ``shared`` of its variance common to the
    frames of a clip (PYoCo's mixed noise); each frame's noise is N(0, I) whatever ``shared``.

    ``paths[i]`` = (centres (T, 2) as (x, y) fractions of the side, radii (T,)) carries a disc of clip i's
    shared noise along a shape's path (noise warping, as Go-with-the-Flow warps noise along the optical
    flow): inside the disc (radius + ``PATH_PAD``) frame f's shared noise is the disc's own noise at the
    point it came from in the first frame (moved with the centre, scaled with the radius), centred over the
    disc and with its sign flipped every other frame, and it makes up ``PATH_SHARED`` of the variance
    there; outside it, the still background noise. The flip marks the disc in every frame, whether it
    moves or only grows: a pixel's noise alternates while the disc covers it and stays still outside it (a
    disc carried without the flip stands out only where it moves, and the model did not learn growing or
    shrinking from it); the centring keeps the flip from moving the frame's mean, which sets the
    background's grey. Disc and background are independent draws, so every frame stays N(0, I) (up to the
    one degree of freedom the centring takes). A ``None`` path (for all clips, or one) leaves the shared
    noise still; the draws before it are unchanged."""
    n, c, t, h, w = shape
    common = torch.randn((n, c, 1, h, w), generator=generator, device=device)
    own = torch.randn(tuple(shape), generator=generator, device=device)
    share = torch.full((n, 1, t, h, w), float(shared), device=device)
    if paths is not None:
        if len(paths) != n:
            raise ValueError(f"{len(paths)} paths for {n} clips")
        disc = torch.randn((n, c, h, w), generator=generator, device=device)
        common = common.expand(n, c, t, h, w).clone()
        for i, path in enumerate(paths):
            if path is not None:
                common[i], inside = _carried(common[i, :, 0], disc[i], path, t)
                share[i, 0][inside] = PATH_SHARED
    return share.sqrt() * common + (1 - share).sqrt() * own


def _carried(still: torch.Tensor, disc: torch.Tensor, path, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``still`` (C, h, w) with ``disc`` (C, h, w) carried along ``path`` over ``frames``: the noise
    (C, T, h, w) and where the disc is (T, h, w)."""
    centres, radii = _path(path, frames)
    _, h, w = still.shape
    ys, xs = _grid(h, w)
    masks = path_discs(path, frames, h, w).to(still.device)
    out = []
    for f, inside in enumerate(masks):
        dx, dy = xs - centres[f, 0], ys - centres[f, 1]
        scale = radii[0] / radii[f]  # back to the first frame: undo the move, then the growth
        src_x = ((centres[0, 0] + dx * scale) * w - 0.5).round().long().clamp(0, w - 1).expand(h, w)
        src_y = ((centres[0, 1] + dy * scale) * h - 0.5).round().long().clamp(0, h - 1).expand(h, w)
        carried = disc[:, src_y.to(disc.device), src_x.to(disc.device)]
        # the disc's noise flips sign every frame (it marks the shape's pixels); it is centred over the disc
        # first, so that the flip does not move the frame's mean (which sets the background's grey)
        n = inside.sum().clamp_min(2)
        mean = (carried * inside).sum((-2, -1), keepdim=True) / n
        carried = (carried - mean) * (n / (n - 1)).sqrt()
        sign = 1.0 if f % 2 == 0 else -1.0
        out.append(torch.where(inside, sign * carried, still))
    return torch.stack(out, 1), masks


def path_discs(path, frames: int, h: int, w: int) -> torch.Tensor:
    """Where the disc of a shape's ``path`` (centres (T, 2), radii (T,); see ``video_noise``) lies on an
    (h, w) grid in each of ``frames`` frames: (T, h, w) bool, the shape's radius + ``PATH_PAD``."""
    centres, radii = _path(path, frames)
    ys, xs = _grid(h, w)
    dist2 = (xs - centres[:, 0, None, None]).square() + (ys - centres[:, 1, None, None]).square()
    return dist2 <= (radii[:, None, None] + PATH_PAD) ** 2


def _path(path, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    centres, radii = (torch.as_tensor(np.asarray(v), dtype=torch.float64) for v in path)
    if centres.shape != (frames, 2) or radii.shape != (frames,):
        raise ValueError(f"a path needs centres ({frames}, 2) and radii ({frames},)")
    return centres, radii


def _grid(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel centres as fractions of the side: ys (h, 1), xs (1, w)."""
    ys = ((torch.arange(h, dtype=torch.float64) + 0.5) / h)[:, None]
    xs = ((torch.arange(w, dtype=torch.float64) + 0.5) / w)[None, :]
    return ys, xs


def _training(path: str | os.PathLike) -> dict:
    """A video model's ``training.json`` (empty when absent)."""
    info = Path(path) / "training.json"
    return json.loads(info.read_text()) if info.is_file() else {}


def trained_noise_shared(path: str | os.PathLike) -> float:
    """The ``noise_shared`` a video model was trained with (its ``training.json``; 0 when absent)."""
    return float(_training(path).get("noise_shared", 0.0))


def trained_noise_warp(path: str | os.PathLike) -> bool:
    """Whether a video model was trained with its noise carried along the shapes' paths (``--noise-warp``):
    then sampling carries it along a path drawn for the prompt (``genkit.data.video.prompt_path``)."""
    return bool(_training(path).get("noise_warp", False))


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
    path_fn=None,
) -> torch.Tensor:
    """Clips (N, T, 3, H, W) in [-1, 1], clip i from ``prompts[i]`` with ``seeds[i]``, at the UNet's size,
    from ``video_noise`` with ``noise_shared`` (the model's ``trained_noise_shared``). ``reverse_noise``
    gives each frame the noise of the frame at the mirror position (a diagnostic: a model whose motion
    follows the caption keeps its direction, one whose motion follows the noise reverses it). ``path_fn``
    (prompt, frames, seed) -> path or None carries a disc of each clip's shared noise along a path
    (``video_noise``; for a model trained with ``--noise-warp``, ``genkit.data.video.prompt_path``)."""
    size = pipe.unet.config.sample_size * pipe.vae_scale_factor
    c, h = pipe.unet.config.in_channels, size // pipe.vae_scale_factor
    latents = torch.cat(
        [
            video_noise(
                (1, c, frames, h, h),
                noise_shared,
                torch.Generator("cpu").manual_seed(s),
                paths=None if path_fn is None else [path_fn(prompts[i], frames, s)],
            )
            for i, s in enumerate(seeds)
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
