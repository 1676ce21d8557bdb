"""``genkit avatar train --data DIR``: fit a head avatar (or one of its baselines) to a monocular video.

Each step takes ``frames_per_step`` random training frames and ``rays_per_step`` random pixels among those
the tracked mesh covers, samples the shell around the mesh (``avatar.shell_samples``, jittered), renders
them with the chosen model and minimises photometric MSE + ``mask_weight`` x (1 - opacity)^2 + a light L2
on the hash tables. The camera depth of every training frame is rasterized once. Runs on accelerate with
resumable checkpoints under ``OUT/checkpoints``; writes ``OUT/model`` (``save_pretrained``, safetensors)
and ``OUT/report.json`` (PSNR inside the head mask on every held-out split, the training curve).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from genkit.metrics.image import psnr, ssim
from genkit.render.avatar.head import LIGHTS, HeadData, load_head_split
from genkit.render.avatar.model import MODELS, HashBlendshapeAvatar, render_frame, shell_samples
from genkit.render.raster import rasterize
from genkit.training.loop import (
    TrainStep,
    device_field,
    make_accelerator,
    progress,
    resume,
    save_checkpoint,
    save_dtype,
    save_dtype_field,
)
from genkit.utils import GenkitError, atomic_dir, atomic_file, reading

__all__ = ["AvatarTrainConfig", "evaluate", "load_avatar", "train_avatar"]

EVAL_SPLITS = ("test_expr", "test_extreme", "test_view")


@dataclass
class AvatarTrainConfig:
    data: str = field(default="", metadata={"help": "head dataset folder (genkit avatar data)"})
    out: str = field(
        default="runs/avatar", metadata={"help": "run folder: checkpoints/, model/, report.json"}
    )
    model: str = field(default="avatar", metadata={"help": "what to train", "choices": sorted(MODELS)})
    normal_input: str = field(
        default="auto",
        metadata={
            "help": "--model avatar: its MLP also reads the vertex normals in the head frame (light moving "
            "with the head), the world frame (light fixed in the scene) or none (the paper's input); auto: "
            "the frame of the light that genkit avatar data recorded in meta.json, else head",
            "choices": ["auto", *HashBlendshapeAvatar.NORMAL_INPUTS],
        },
    )
    pose_input: bool = field(
        default=False,
        metadata={"help": "--model avatar: its blend-weight CNN also reads the head pose (yaw, pitch, roll)"},
    )
    max_train_steps: int = field(default=3000, metadata={"help": "optimizer steps"})
    rays_per_step: int = field(default=4096, metadata={"help": "rays per step"})
    frames_per_step: int = field(default=4, metadata={"help": "frames the rays are drawn from"})
    num_samples: int = field(default=8, metadata={"help": "samples per ray in the shell"})
    thickness: float = field(default=0.04, metadata={"help": "shell half-thickness around the mesh"})
    learning_rate: float = field(default=5e-3, metadata={"help": "Adam learning rate (cosine decay)"})
    mask_weight: float = field(default=0.1, metadata={"help": "weight of the opacity (mask) loss"})
    table_l2: float = field(default=1e-6, metadata={"help": "L2 regulariser on the hash tables"})
    seed: int = field(default=0, metadata={"help": "seed of rays and initialisation"})
    checkpointing_steps: int = field(
        default=500, metadata={"help": "save a resumable checkpoint every N steps"}
    )
    eval_frames: int = field(
        default=12, metadata={"help": "frames per held-out split for the report (0: none)"}
    )
    save_dtype: str = save_dtype_field()
    device: str = device_field()

    def __post_init__(self):
        if not self.data:
            raise GenkitError("--data is required (a head dataset folder; make one with genkit avatar data)")
        if (
            min(
                self.max_train_steps,
                self.rays_per_step,
                self.frames_per_step,
                self.num_samples,
                self.checkpointing_steps,
            )
            <= 0
        ):
            raise GenkitError("steps, rays, frames, samples and checkpointing-steps must be positive")
        if self.thickness <= 0:
            raise GenkitError("--thickness must be positive")
        if self.normal_input not in ("auto", *HashBlendshapeAvatar.NORMAL_INPUTS):
            raise GenkitError(
                f"--normal-input must be auto or one of {', '.join(HashBlendshapeAvatar.NORMAL_INPUTS)}"
            )


def build_model(cfg: AvatarTrainConfig, data: HeadData):
    normal_input = cfg.normal_input
    if normal_input == "auto":  # the light of genkit's procedural head, else the head frame
        normal_input = data.light if data.light in LIGHTS else "head"
    extra = {"normal_input": normal_input, "pose_input": cfg.pose_input} if cfg.model == "avatar" else {}
    model = MODELS[cfg.model](
        num_vertices=len(data.template),
        num_faces=len(data.faces),
        num_expressions=data.expressions.shape[1],
        **extra,
    )
    model.set_mesh(data.template, data.faces)
    return model


def render_frames(model, frames, index, neighbour) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A training step's differentiable work: colour and opacity of the shell's rays of each frame
    (expression, pose, vertices, shell)."""
    return [model.render(model.prepare(e, p, v, neighbour), index, shell) for e, p, v, shell in frames]


def train_avatar(cfg: AvatarTrainConfig) -> Path:
    out = Path(cfg.out)
    accelerator = make_accelerator(out, cfg.seed, device=cfg.device)
    data = load_head_split(cfg.data, "train").to(accelerator.device)
    model = build_model(cfg, data).to(accelerator.device)
    index, neighbour = model.mesh_index()
    depth = torch.stack(
        [
            rasterize(v, data.faces, c, data.focal, data.size)[2].reshape(-1)
            for v, c in zip(data.vertices, data.c2w, strict=True)
        ]
    )
    hits = [torch.nonzero(torch.isfinite(d)).squeeze(1) for d in depth]
    tables = [p for n, p in model.named_parameters() if n == "tables"]
    rest = [p for n, p in model.named_parameters() if n != "tables"]
    optimizer = torch.optim.Adam(
        [{"params": tables, "lr": cfg.learning_rate * 4}, {"params": rest, "lr": cfg.learning_rate}],
        eps=1e-15,
    )
    sched = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(s / cfg.max_train_steps, 1.0)))
    )
    step_fn, optimizer, sched = accelerator.prepare(TrainStep(model), optimizer, sched)
    start = resume(accelerator, out)
    pixels = data.images.reshape(len(data), -1, 3)
    curve, t0 = [], time.perf_counter()
    bar = progress(accelerator, cfg.max_train_steps, start, f"avatar train ({cfg.model})")
    for step in range(start, cfg.max_train_steps):
        model.train()
        rng = np.random.default_rng([cfg.seed, 17, accelerator.process_index, step])
        gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
        loss_rgb = loss_mask = 0.0
        per_frame = cfg.rays_per_step // cfg.frames_per_step
        chosen = rng.choice(len(data), cfg.frames_per_step, replace=len(data) < cfg.frames_per_step)
        frames = []  # (expression, pose, vertices, shell) of each chosen frame
        for f in chosen:
            pix = hits[f][torch.as_tensor(rng.integers(0, len(hits[f]), per_frame), device=depth.device)]
            shell = shell_samples(
                data.vertices[f],
                data.faces,
                data.c2w[f],
                data.focal,
                data.size,
                cfg.num_samples,
                cfg.thickness,
                pix,
                depth[f],
                gen,
            )
            frames.append((data.expressions[f], data.pose[f], data.vertices[f], shell))
        outputs = step_fn(render_frames, frames, index, neighbour)
        for f, (*_, shell), (rgb, opacity) in zip(chosen, frames, outputs, strict=True):
            loss_rgb = loss_rgb + F.mse_loss(rgb, pixels[f, shell.pixels]) / cfg.frames_per_step
            loss_mask = loss_mask + ((1 - opacity) ** 2).mean() / cfg.frames_per_step
        reg = sum((p**2).mean() for p in tables) if tables else torch.zeros((), device=depth.device)
        loss = loss_rgb + cfg.mask_weight * loss_mask + cfg.table_l2 * reg
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        optimizer.step()
        sched.step()
        train_psnr = -10 * math.log10(max(float(loss_rgb.detach()), 1e-10))
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}", psnr=f"{train_psnr:.1f}")
        curve.append({"step": step + 1, "seconds": time.perf_counter() - t0, "train_psnr": train_psnr})
        if (step + 1) % cfg.checkpointing_steps == 0 or step + 1 == cfg.max_train_steps:
            save_checkpoint(accelerator, out, step + 1)
    bar.close()

    final = out / "model"
    if accelerator.is_main_process:
        model.eval()
        report = {
            "model": cfg.model,
            "train_minutes_this_run": (time.perf_counter() - t0) / 60,
            "curve": curve[::10],
        }
        if cfg.eval_frames > 0:
            report["psnr"] = evaluate(model, cfg.data, cfg.eval_frames, cfg.num_samples, cfg.thickness)
        with atomic_dir(final) as tmp:
            model.to(save_dtype(cfg.save_dtype)).save_pretrained(tmp, safe_serialization=True)
            (tmp / "avatar.json").write_text(json.dumps({"model": cfg.model, "train": asdict(cfg)}, indent=2))
        model.float()
        with atomic_file(out / "report.json") as tmp:
            tmp.write_text(json.dumps(report, indent=2) + "\n")
    accelerator.end_training()
    return final


@torch.no_grad()
def render_split(
    model, d: HeadData, frames: int | None = None, num_samples: int = 8, thickness: float = 0.04
):
    """Render the first ``frames`` frames of a split: (PSNR list, SSIM list inside the head mask, images)."""
    index, neighbour = model.mesh_index()
    psnrs, ssims, images = [], [], []
    dev = model.device
    for i in range(len(d) if frames is None else min(frames, len(d))):
        img, _ = render_frame(
            model,
            d.expressions[i].to(dev),
            d.pose[i].to(dev),
            d.vertices[i].to(dev),
            d.c2w[i].to(dev),
            d.focal,
            d.size,
            index,
            neighbour,
            num_samples,
            thickness,
        )
        img = img.cpu()
        psnrs.append(psnr(img, d.images[i], d.masks[i]))
        ssims.append(ssim(img, d.images[i], d.masks[i]))
        images.append(img)
    return psnrs, ssims, images


def evaluate(
    model, data_dir, frames: int, num_samples: int = 8, thickness: float = 0.04, splits=EVAL_SPLITS
) -> dict:
    """Mean PSNR inside the head mask on the first ``frames`` frames of each held-out split present."""
    out = {}
    for split in splits:
        if (Path(data_dir) / f"{split}.npz").is_file():
            psnrs, _, _ = render_split(
                model, load_head_split(data_dir, split), frames, num_samples, thickness
            )
            out[split] = float(np.mean(psnrs))
    return out


def load_avatar(path: str | Path):
    """A trained avatar folder (``RUN`` or ``RUN/model``) -> (model in fp32, eval mode; its avatar.json)."""
    path = Path(path)
    if (path / "model" / "config.json").is_file():
        path = path / "model"
    meta_path = path / "avatar.json"
    if not meta_path.is_file():
        raise GenkitError(
            f"{path} is not a trained avatar (no avatar.json; genkit avatar train writes RUN/model)"
        )
    with reading(f"could not load the avatar from {path}"):  # broken JSON or weights
        meta = json.loads(meta_path.read_text())
        name = meta.get("model") if isinstance(meta, dict) else None
        if name not in MODELS:
            raise GenkitError(f"{meta_path}: unknown model {name!r}")
        model = MODELS[name].from_pretrained(str(path)).float().eval()
    return model, meta
