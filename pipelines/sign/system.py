"""``genkit sign "SENTENCE"``: a signing avatar video and its SMPL-X poses from a sentence of glosses.

``--method diffusion`` (default) samples the text-to-motion model (``SignMotionPipeline``, the bundled
``sign-motion`` or any folder of ``genkit train sign``); ``--method sds`` distils the same model into
Bezier motion curves by score distillation (``pipelines/sign/motion_sds.py``: slower, one sentence per
optimisation). The motion is rendered by ``genkit.render.sign_avatar`` (a skinned procedural body and hands,
z-buffer rasteriser) to mp4 or gif (by ``--out``'s suffix), and written beside it as an SMPL-X-style npz
(``genkit.data.skeleton.save_smplx_npz``) with a ``.json`` of the run's settings.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from genkit.utils import GenkitError, atomic_file

__all__ = ["SignConfig", "load_sign_pipeline", "sign"]


@dataclass
class SignConfig:
    sentence: str = field(
        default="", metadata={"help": "three signs, e.g. 'hello thanks house'", "positional": True}
    )
    out: str = field(default="outputs/sign.mp4", metadata={"help": "video path (.mp4 or .gif); .npz beside"})
    model: str = field(
        default="sign-motion", metadata={"help": "bundled motion model or a genkit train sign folder"}
    )
    method: str = field(
        default="diffusion",
        metadata={"help": "sampling or score distillation", "choices": ["diffusion", "sds"]},
    )
    steps: int = field(default=20, metadata={"help": "denoising steps (diffusion) "})
    guidance_scale: float = field(
        default=0.0,
        metadata={"help": "classifier-free guidance, 1: none (0: 2.5 for diffusion, 7.5 for sds)"},
    )
    sds_steps: int = field(default=400, metadata={"help": "optimisation steps (sds)"})
    segments: int = field(default=6, metadata={"help": "Bezier segments of the motion curves (sds)"})
    size: int = field(default=192, metadata={"help": "video side in pixels"})
    seed: int = field(default=0, metadata={"help": "seed of the noise"})
    device: str = field(default="auto", metadata={"help": "'auto' (CUDA if available), 'cpu', 'cuda', ..."})

    def __post_init__(self):
        from genkit.data.signs import parse_sentence

        try:
            parse_sentence(self.sentence)
        except ValueError as e:
            raise GenkitError(str(e)) from None
        if Path(self.out).suffix not in (".mp4", ".gif"):
            raise GenkitError(f"--out must end in .mp4 or .gif, got {self.out!r}")
        if min(self.steps, self.sds_steps, self.segments) <= 0 or self.size < 32:
            raise GenkitError("steps, sds-steps and segments must be positive and size at least 32")
        if self.guidance_scale and self.guidance_scale < 1:
            raise GenkitError("guidance-scale must be at least 1 (or 0: the method's default)")

    @property
    def scale(self) -> float:
        return self.guidance_scale or (2.5 if self.method == "diffusion" else 7.5)


def load_sign_pipeline(name_or_path: str, device: str = "cpu"):
    """A ``SignMotionPipeline`` from a bundled name or a folder; GenkitError if it is not one."""
    from genkit.assets import bundled_models
    from genkit.loading import bundled_path
    from genkit.pipelines.sign import SignMotionPipeline
    from genkit.utils import reading

    path = bundled_path(name_or_path) if name_or_path in bundled_models() else Path(name_or_path)
    if not (path / "model_index.json").is_file():
        raise GenkitError(f"{name_or_path!r} is not a bundled sign model nor a genkit train sign folder")
    with reading(f"could not load a sign model from {str(path)!r}", (Exception,)):
        if json.loads((path / "model_index.json").read_text())["_class_name"] != "SignMotionPipeline":
            raise GenkitError(f"{str(path)!r} is not a SignMotionPipeline folder")
        pipe = SignMotionPipeline.from_pretrained(path).to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def sign(cfg: SignConfig) -> Path:
    from genkit.data.signs import FPS, from_features
    from genkit.data.skeleton import save_smplx_npz
    from genkit.loading import resolve_device
    from genkit.pipelines.sign.motion_sds import distill_motion
    from genkit.render.sign_avatar import render_motion
    from genkit.video import write_clip

    device = resolve_device(cfg.device)
    pipe = load_sign_pipeline(cfg.model, device)
    sentence = " ".join(cfg.sentence.lower().replace(",", " ").split())
    if cfg.method == "diffusion":
        g = torch.Generator(device).manual_seed(cfg.seed)
        motion = pipe([sentence], cfg.steps, cfg.scale, generator=g).motion[0]
    else:
        motion = distill_motion(pipe, sentence, cfg.sds_steps, cfg.segments, cfg.scale, seed=cfg.seed)
    pose, expression = from_features(motion.float().cpu())
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_clip(render_motion(pose, expression, cfg.size), out, fps=FPS)
    save_smplx_npz(out.with_suffix(".npz"), pose, expression, fps=FPS)
    with atomic_file(out.with_suffix(".json")) as tmp:
        tmp.write_text(
            json.dumps({**asdict(cfg), "sentence": sentence, "frames": len(pose), "fps": FPS}, indent=2)
        )
    return out
