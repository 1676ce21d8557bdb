"""``genkit video``: clips from text prompts with the bundled video model or any diffusers AnimateDiff folder.

Each clip is written as an mp4 (H.264 through imageio-ffmpeg) and a looping gif, upscaled by ``--scale``
for viewing, with ``metadata.jsonl`` (prompt, seed and settings of each clip). The bundled ``video-shapes``
model knows the moving-shapes captions: "a small red circle moving left", "a blue square growing"; it was
trained with ``--noise-warp``, so each clip's noise is carried along a path drawn for the prompt's motion
words (``genkit.data.video.prompt_path``, recorded in the metadata) and the shape follows it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genkit.loading import bundled_path, load_pipeline, pipeline_class_name, resolve_device, resolve_model
from genkit.utils import GenkitError, atomic_file, ensure_writable_dir, reading

__all__ = ["VideoConfig", "clip_to_uint8", "write_clip", "video"]


@dataclass
class VideoConfig:
    prompt: list[str] = field(
        metadata={"help": "one or more prompts, e.g. 'a small red circle moving left'", "positional": True}
    )
    model: str | None = field(
        default=None,
        metadata={"help": "bundled video model (default: video-shapes) or a diffusers AnimateDiff folder"},
    )
    frames: int = field(default=16, metadata={"help": "frames per clip"})
    steps: int = field(default=25, metadata={"help": "denoising steps"})
    scheduler: str = field(
        default="dpm", metadata={"help": "diffusers scheduler", "choices": ["ddim", "dpm", "euler"]}
    )
    guidance: float = field(default=4.0, metadata={"help": "classifier-free guidance scale (1 disables)"})
    seed: int = field(default=0, metadata={"help": "seed of clip j of each prompt is seed + j"})
    num_videos: int = field(default=1, metadata={"help": "clips per prompt"})
    noise_shared: float | None = field(
        default=None,
        metadata={
            "help": "share of the initial noise common to all frames (default: what the model was trained "
            "with; 0: independent noise per frame, as a plain AnimateDiffPipeline call)"
        },
    )
    noise_warp: str = field(
        default="auto",
        metadata={
            "help": "carry a disc of the shared noise along a path drawn for the prompt's motion words "
            "(genkit.data.video.prompt_path): 'auto' (if the model was trained with --noise-warp, as the "
            "bundled one), 'on' or 'off'",
            "choices": ["auto", "on", "off"],
        },
    )
    fps: int = field(default=8, metadata={"help": "frames per second of the mp4 and gif"})
    scale: int = field(default=4, metadata={"help": "nearest-neighbour upscaling of the written clips"})
    out: str = field(default="outputs/video", metadata={"help": "output folder (mp4, gif, metadata.jsonl)"})
    device: str = field(default="auto", metadata={"help": "'auto' (CUDA if available), 'cpu', 'cuda', ..."})

    def __post_init__(self):
        if not self.prompt or any(not p.strip() for p in self.prompt):
            raise GenkitError("prompt must not be empty")
        for name in ("steps", "num_videos", "fps", "scale"):
            if getattr(self, name) <= 0:
                raise GenkitError(
                    f"--{name.replace('_', '-')} must be a positive integer, got {getattr(self, name)}"
                )
        if self.noise_shared is not None and not 0 <= self.noise_shared < 1:
            raise GenkitError(f"--noise-shared must be in [0, 1), got {self.noise_shared}")
        if not 2 <= self.frames <= 32:
            raise GenkitError(
                f"--frames must be in [2, 32] (the motion modules' positions), got {self.frames}"
            )


def clip_to_uint8(clip, scale: int = 1) -> np.ndarray:
    """A clip (T, 3, H, W) in [-1, 1] -> (T, H*scale, W*scale, 3) uint8."""
    x = ((np.asarray(clip, dtype=np.float32).clip(-1, 1) + 1) * 127.5).round().astype(np.uint8)
    x = x.transpose(0, 2, 3, 1)
    return x.repeat(scale, 1).repeat(scale, 2) if scale > 1 else x


def write_clip(frames: np.ndarray, path: Path, fps: int) -> None:
    """``frames`` (T, H, W, 3) uint8 as an mp4 or gif (by ``path``'s suffix), atomically."""
    import imageio.v2 as imageio

    with atomic_file(path) as tmp:
        if path.suffix == ".mp4":
            imageio.mimwrite(tmp, list(frames), fps=fps, codec="libx264", quality=8, macro_block_size=1)
        else:
            imageio.mimwrite(tmp, list(frames), format="GIF", duration=1000 / fps, loop=0)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "clip"


def video(cfg: VideoConfig) -> tuple[Path, int]:
    """Generate ``cfg.num_videos`` clips per prompt into ``cfg.out``; returns (folder, clips)."""
    from tqdm.auto import tqdm

    from genkit.data.video import prompt_path
    from genkit.pipelines.video import generate_clips, trained_noise_shared, trained_noise_warp

    model = cfg.model or "video-shapes"
    path = bundled_path("video-shapes") if cfg.model is None else resolve_model(cfg.model)
    device = resolve_device(cfg.device)
    with reading(f"could not load model from {str(path)!r}", (Exception,)):
        kind = pipeline_class_name(path)
    if kind != "AnimateDiffPipeline":
        raise GenkitError(f"{model!r} is an image model ({kind}); use 'genkit generate'")
    shared = trained_noise_shared(path) if cfg.noise_shared is None else cfg.noise_shared
    if cfg.noise_warp == "on" and not shared:
        raise GenkitError("--noise-warp carries the shared part of the noise: it needs --noise-shared > 0")
    warp = shared > 0 and (cfg.noise_warp == "on" or (cfg.noise_warp == "auto" and trained_noise_warp(path)))
    out = ensure_writable_dir(cfg.out)
    pipe = load_pipeline(path, cfg.scheduler, device)
    max_frames = pipe.unet.config.motion_max_seq_length
    if cfg.frames > max_frames:
        raise GenkitError(f"--frames must be at most {max_frames} for {model!r}")
    records = []
    jobs = [(i, p, j) for i, p in enumerate(cfg.prompt) for j in range(cfg.num_videos)]
    path_fn = prompt_path if warp else None
    for i, prompt, j in tqdm(jobs, desc="video", unit="clip", disable=len(jobs) == 1):
        clip = generate_clips(
            pipe, [prompt], [cfg.seed + j], cfg.frames, cfg.steps, cfg.guidance, shared, path_fn=path_fn
        )[0]
        noise_path = prompt_path(prompt, cfg.frames, cfg.seed + j) if warp else None  # for the metadata
        frames = clip_to_uint8(clip.numpy(), cfg.scale)
        stem = f"{i:03d}_{j:02d}-{_slug(prompt)}"
        for suffix in (".mp4", ".gif"):
            write_clip(frames, out / f"{stem}{suffix}", cfg.fps)
        records.append(
            {
                "file_name": f"{stem}.mp4",
                "gif": f"{stem}.gif",
                "text": prompt,
                "seed": cfg.seed + j,
                "frames": cfg.frames,
                "fps": cfg.fps,
                "steps": cfg.steps,
                "scheduler": cfg.scheduler,
                "guidance": cfg.guidance,
                "noise_shared": shared,
                "noise_path": None
                if noise_path is None
                else {"centres": noise_path[0].round(4).tolist(), "radii": noise_path[1].round(4).tolist()},
                "model": model,
            }
        )
    with atomic_file(out / "metadata.jsonl") as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in records))
    return out, len(records)
