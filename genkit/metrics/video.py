"""Video metrics for the moving-shapes domain.

- ``track(frames)``: the shape's centre and area in every frame, read off the pixels (the pixels that
  differ from the border's median colour); ``classify_motion`` turns a track into one of ``MOTIONS`` (the
  centre's travel against the change of area). Analytic, so it needs no training and cannot be fooled by a
  feature space: on real clips it is right for every clip (tested).
- ``frame_accuracy``: the fraction of frames whose shape and colour the video classifier's per-frame
  heads read as the caption's (the image oracle reads positions off a grid of five and misreads shapes
  between them, so it cannot judge moving shapes).
- ``flicker(frames)``: the mean absolute change between consecutive frames (pixels in [0, 1]); real clips
  change only where the shape moves, so a generator's ratio to the real value measures temporal noise.
- ``VideoClassifier``: a small video network trained from scratch on the procedural clips (shape, colour,
  motion per clip; shape and colour per frame) by ``genkit train video-classifier``; its clip features give the Fréchet video distance
  ("FVD"). Frame order matters to it (it is trained to read the motion), so real clips with shuffled
  frames are far from real clips in its space: the control every generator must beat.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config

from genkit.data.shapes import COLORS, SHAPES
from genkit.data.video import DIRECTIONS, MOTIONS, VideoDataset, parse_video_caption
from genkit.utils import reading

__all__ = [
    "VIDEO_HEADS",
    "VideoClassifier",
    "classify_motion",
    "flicker",
    "frame_accuracy",
    "load_video_classifier",
    "real_clips",
    "real_video_features",
    "score_clips",
    "track",
    "video_labels",
]

VIDEO_HEADS = ("shape", "color", "motion")


def _to_unit(frames: torch.Tensor) -> torch.Tensor:
    return (frames.float().clamp(-1, 1) + 1) / 2


def track(frames: torch.Tensor, tau: float = 0.2) -> tuple[torch.Tensor, torch.Tensor]:
    """Centres (N, T, 2) as fractions of the side (x, y) and areas (N, T) as fractions of the frame of the
    shape in clips ``frames`` (N, T, 3, R, R) in [-1, 1]: the pixels whose colour differs by more than
    ``tau`` (in [0, 1], any channel) from the median of the frame's border."""
    x = _to_unit(frames)
    r = x.shape[-1]
    border = torch.cat([x[..., :2, :].flatten(-2), x[..., -2:, :].flatten(-2)], -1)  # N,T,3,4R
    bg = border.median(-1).values[..., None, None]
    mask = ((x - bg).abs().amax(2) > tau).float()  # N,T,R,R
    area = mask.mean((-2, -1))
    coords = (torch.arange(r, dtype=torch.float32) + 0.5) / r
    mass = mask.sum((-2, -1)).clamp_min(1.0)
    cx = (mask * coords[None, None, None, :]).sum((-2, -1)) / mass
    cy = (mask * coords[None, None, :, None]).sum((-2, -1)) / mass
    return torch.stack([cx, cy], -1), area


def classify_motion(centres: torch.Tensor, areas: torch.Tensor) -> list[str]:
    """The motion of each track: a least-squares fit of the centre's travel over the clip against the log
    change of the area (both divided by what a clip of the data shows: 0.36 of the side, a factor of 5.4 in
    area); "none" when neither reaches a third of it."""
    n, t = areas.shape
    s = torch.linspace(-0.5, 0.5, t)
    slope = lambda y: (y * s[None, :, None]).sum(1) / (s**2).sum()  # noqa: E731 (travel over the clip)
    travel = slope(centres)  # N,2
    log_area = torch.log(areas.clamp_min(1e-4))[..., None]
    growth = slope(log_area)[:, 0]
    out = []
    for (dx, dy), g in zip(travel.tolist(), growth.tolist(), strict=True):
        move, size = max(abs(dx), abs(dy)) / 0.36, abs(g) / float(np.log(5.4))
        if max(move, size) < 1 / 3:
            out.append("none")
        elif size > move:
            out.append("growing" if g > 0 else "shrinking")
        else:
            d = (int(np.sign(dx)), 0) if abs(dx) >= abs(dy) else (0, int(np.sign(dy)))
            out.append(next(m for m, v in DIRECTIONS.items() if v == d))
    return out


def flicker(frames: torch.Tensor) -> float:
    """Mean absolute change between consecutive frames of clips (N, T, 3, R, R) in [-1, 1], pixels in [0, 1]."""
    x = _to_unit(frames)
    return float((x[:, 1:] - x[:, :-1]).abs().mean())


def video_labels(prompts: list[str]) -> dict[str, torch.Tensor]:
    attrs = [parse_video_caption(p) for p in prompts]
    return {
        "shape": torch.tensor([SHAPES.index(a.shape) for a in attrs]),
        "color": torch.tensor([list(COLORS).index(a.color) for a in attrs]),
        "motion": torch.tensor([MOTIONS.index(a.motion) for a in attrs]),
    }


def frame_accuracy(pred: dict[str, torch.Tensor], prompts: list[str]) -> float:
    """The fraction of frames whose shape and colour a ``VideoClassifier.predict`` reads as the caption's."""
    target = video_labels(prompts)
    ok = (pred["frame_shape"] == target["shape"][:, None]) & (pred["frame_color"] == target["color"][:, None])
    return float(ok.float().mean())


def _block(cin: int, cout: int, kernel_t: int, pool: tuple[int, int, int]) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(cin, cout, (kernel_t, 3, 3), padding=(kernel_t // 2, 1, 1)),
        nn.GroupNorm(8, cout),
        nn.SiLU(),
        nn.MaxPool3d(pool),
    )


class VideoClassifier(ModelMixin, ConfigMixin):
    """Clips (B, T, 3, R, R) in [-1, 1] -> logits of shape, colour and motion per clip, a ``feature_dim``
    feature vector per clip, and shape and colour logits per frame (``frame_shape``, ``frame_color``:
    (B, T, classes)).

    Two per-frame convolution blocks (3x3 in space) feed the frame heads through a spatial max and mean
    (so a frame is read wherever the shape is); two space-time blocks (3x3x3), pooled over space first and
    time last, feed the clip heads and features, which so keep the order of the frames."""

    @register_to_config
    def __init__(
        self,
        frames: int = 16,
        resolution: int = 32,
        width: int = 16,
        feature_dim: int = 128,
        num_shapes: int = 4,
        num_colors: int = 5,
        num_motions: int = 6,
    ):
        super().__init__()
        self.frame_trunk = nn.Sequential(
            _block(3, width, 1, (1, 2, 2)), _block(width, 2 * width, 1, (1, 2, 2))
        )
        self.frame_heads = nn.ModuleDict(
            {"shape": nn.Linear(4 * width, num_shapes), "color": nn.Linear(4 * width, num_colors)}
        )
        self.clip_trunk = nn.Sequential(
            _block(2 * width, 4 * width, 3, (2, 2, 2)), _block(4 * width, 4 * width, 3, (2, 2, 2))
        )
        t, s = frames // 4, resolution // 16
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(4 * width * t * s * s, feature_dim), nn.SiLU())
        self.heads = nn.ModuleDict(
            {
                "shape": nn.Linear(feature_dim, num_shapes),
                "color": nn.Linear(feature_dim, num_colors),
                "motion": nn.Linear(feature_dim, num_motions),
            }
        )

    def forward(self, clips: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.frame_trunk(clips.transpose(1, 2))  # B,C,T,r,r
        per_frame = torch.cat([h.amax((-2, -1)), h.mean((-2, -1))], 1).transpose(1, 2)  # B,T,2C
        f = self.embed(self.clip_trunk(h))
        out = {k: head(f) for k, head in self.heads.items()}
        out.update({f"frame_{k}": head(per_frame) for k, head in self.frame_heads.items()})
        out["features"] = f
        return out

    @torch.no_grad()
    def predict(self, clips: torch.Tensor, batch_size: int = 64) -> dict[str, torch.Tensor]:
        """Predicted class indices per head (``frame_*``: per frame) and features, in batches."""
        keys = (*VIDEO_HEADS, "frame_shape", "frame_color")
        outs: dict[str, list[torch.Tensor]] = {k: [] for k in (*keys, "features")}
        for i in range(0, len(clips), batch_size):
            o = self(clips[i : i + batch_size].to(self.device, self.dtype))
            for k in keys:
                outs[k].append(o[k].argmax(-1).cpu())
            outs["features"].append(o["features"].float().cpu())
        return {k: torch.cat(v) for k, v in outs.items()}


def load_video_classifier(path: str | None = None, device: str | torch.device = "cpu") -> VideoClassifier:
    """The video classifier: the bundled one, or a folder written by ``genkit train video-classifier``."""
    if path is None:
        from genkit.loading import bundled_path

        path = str(bundled_path("video-classifier"))
    with reading(f"could not load the video classifier from {path!r}", (Exception,)):
        return VideoClassifier.from_pretrained(path).to(device).float().eval()


def real_clips(prompts: list[str], frames: int, seed: int = 4242) -> torch.Tensor:
    """One procedural clip per prompt (its attributes; seeded start, jitter and background)."""
    data = VideoDataset(len(prompts), frames, seed=seed, split="all")
    data.attributes = [parse_video_caption(p) for p in prompts]
    return data.batch(range(len(prompts)))["pixel_values"]


def real_video_features(classifier: VideoClassifier, num: int = 1000, seed: int = 777) -> torch.Tensor:
    """The classifier's features of ``num`` real clips of every combination: the FVD reference."""
    clips = VideoDataset(num, classifier.config.frames, seed=seed, split="all").batch(range(num))
    return classifier.predict(clips["pixel_values"])["features"]


def score_clips(
    clips: torch.Tensor, prompts: list[str], classifier: VideoClassifier, reference: torch.Tensor
) -> dict[str, float]:
    """Every video metric of ``clips`` (N, T, 3, R, R) in [-1, 1] generated from ``prompts``;
    ``reference``: ``real_video_features``. ``flicker_ratio`` is to real clips of the same prompts."""
    from genkit.metrics.scores import frechet_distance

    motions = classify_motion(*track(clips))
    truth = [parse_video_caption(p).motion for p in prompts]
    pred = classifier.predict(clips)
    return {
        "motion_accuracy": float(np.mean([m == t for m, t in zip(motions, truth, strict=True)])),
        "frame_prompt_accuracy": frame_accuracy(pred, prompts),
        "flicker": flicker(clips),
        "flicker_ratio": flicker(clips) / flicker(real_clips(prompts, clips.shape[1])),
        "fvd": frechet_distance(reference, pred["features"]),
        "num_clips": len(prompts),
    }
