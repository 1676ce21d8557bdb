"""``genkit nerf train --data DIR``: an Instant-NGP-style radiance field with occupancy-grid sampling.

Each step draws ``rays_per_step`` random pixels of the training views, samples them with the occupancy
grid (``estimators.OccGridEstimator``, the field's density as ``sigma_fn``), renders them with packed
volume rendering (``volume.rendering``) and regresses the pixels' colours (MSE). Images with alpha are
composited onto a random background colour per ray during training, so that the field learns empty space
instead of a white wall (nerfacc's trick), and onto white for evaluation. The grid is refreshed every 16
steps from the field's density. After the grid's warm-up, a light L1 penalty on the density at random
points of the cells the grid calls empty (``empty_weight``) keeps the field empty where the sampler never
looks: no ray supervises those points, and without it they keep the haze of the initial density, which
any sampler that does not skip them (uniform marching, another grid) would render. Runs on accelerate;
resumable checkpoints under ``OUT/checkpoints``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from genkit.metrics.image import psnr
from genkit.render.estimators import OccGridEstimator
from genkit.render.geometry import camera_rays
from genkit.render.nerf.datasets import SceneData, load_scene
from genkit.render.nerf.field import NGPField
from genkit.render.volume import rendering
from genkit.training.loop import (
    TrainStep,
    device_field,
    make_accelerator,
    progress,
    resume,
    save_checkpoint,
)
from genkit.utils import GenkitError, atomic_file, reading

__all__ = ["NerfTrainConfig", "render_image", "train_nerf"]


@dataclass
class NerfTrainConfig:
    data: str = field(default="", metadata={"help": "scene folder (transforms_*.json or transforms.json)"})
    out: str = field(default="runs/nerf", metadata={"help": "run folder: checkpoints/, model.safetensors"})
    max_train_steps: int = field(default=1500, metadata={"help": "optimizer steps"})
    rays_per_step: int = field(default=1024, metadata={"help": "rays per step"})
    learning_rate: float = field(
        default=1e-2, metadata={"help": "Adam learning rate (decayed x0.1 at the end)"}
    )
    aabb_size: float = field(
        default=1.5, metadata={"help": "half-size of the scene box centred at the origin"}
    )
    grid_resolution: int = field(default=64, metadata={"help": "occupancy grid resolution"})
    render_step_size: float = field(default=0.0, metadata={"help": "march step (0: box diagonal / 1024)"})
    alpha_thre: float = field(default=0.0, metadata={"help": "skip samples with opacity below this"})
    levels: int = field(default=8, metadata={"help": "hash grid levels"})
    log2_table_size: int = field(default=16, metadata={"help": "hash table size per level (log2)"})
    max_resolution: int = field(default=256, metadata={"help": "finest hash grid resolution"})
    grid_warmup_steps: int = field(
        default=64, metadata={"help": "steps during which every grid cell is refreshed"}
    )
    empty_weight: float = field(
        default=1e-3, metadata={"help": "L1 weight on the density at random points of empty grid cells"}
    )
    empty_points: int = field(default=2048, metadata={"help": "random points per step for that penalty"})
    seed: int = field(default=0, metadata={"help": "seed of rays and initialisation"})
    checkpointing_steps: int = field(
        default=500, metadata={"help": "save a resumable checkpoint every N steps"}
    )
    eval_views: int = field(default=4, metadata={"help": "test views rendered for the final PSNR (0: none)"})
    device: str = device_field()

    def __post_init__(self):
        if not self.data:
            raise GenkitError("--data is required (a folder with transforms_train.json or transforms.json)")
        if self.empty_weight < 0 or self.empty_points <= 0:
            raise GenkitError("--empty-weight must be non-negative and --empty-points positive")
        if min(self.max_train_steps, self.rays_per_step, self.checkpointing_steps, self.grid_resolution) <= 0:
            raise GenkitError(
                "max-train-steps, rays-per-step, checkpointing-steps and grid-resolution must be positive"
            )

    @property
    def step_size(self) -> float:
        return self.render_step_size or (2 * self.aabb_size * math.sqrt(3) / 1024)


def build(cfg: NerfTrainConfig):
    aabb = [-cfg.aabb_size] * 3 + [cfg.aabb_size] * 3
    field_ = NGPField(
        aabb, levels=cfg.levels, log2_table_size=cfg.log2_table_size, max_resolution=cfg.max_resolution
    )
    estimator = OccGridEstimator(aabb, resolution=cfg.grid_resolution)
    return field_, estimator


def render_rays(field_, estimator, rays_o, rays_d, cfg: NerfTrainConfig, background, chunk: int = 8192):
    """Colour and opacity of rays, chunked; samples from the occupancy grid with the field as sigma_fn."""
    colours, opacities, counts = [], [], 0
    for i in range(0, rays_o.shape[0], chunk):
        o, d = rays_o[i : i + chunk], rays_d[i : i + chunk]
        bg = background[i : i + chunk] if background.ndim == 2 else background

        def sigma_fn(t0, t1, r, o=o, d=d):
            return field_.density(o[r] + d[r] * ((t0 + t1) / 2)[:, None])

        def rgb_sigma_fn(t0, t1, r, o=o, d=d):
            return field_(o[r] + d[r] * ((t0 + t1) / 2)[:, None], d[r])

        rays, t0, t1 = estimator.sampling(
            o,
            d,
            sigma_fn=sigma_fn,
            render_step_size=cfg.step_size,
            alpha_thre=cfg.alpha_thre,
            early_stop_eps=1e-4,
        )
        colour, opacity, _, _ = rendering(t0, t1, rays, o.shape[0], rgb_sigma_fn, background=bg)
        colours.append(colour)
        opacities.append(opacity)
        counts += rays.numel()
    return torch.cat(colours), torch.cat(opacities), counts


@torch.no_grad()
def render_image(
    field_, estimator, c2w, focal, width, height, cfg: NerfTrainConfig, background=(1.0, 1.0, 1.0)
):
    """(H, W, 3) image and the mean samples per ray of one camera."""
    o, d = camera_rays(c2w, focal, width, height)
    colour, _, n = render_rays(field_, estimator, o, d, cfg, torch.tensor(background, device=o.device))
    return colour.reshape(height, width, 3).clamp(0, 1), n / (width * height)


def render_and_penalty(field_, estimator, origins, dirs, cfg: NerfTrainConfig, background, empty_points):
    """A training step's differentiable work: the rays' colours (``render_rays``), the mean density at
    ``empty_points`` (None without them) and the number of samples."""
    colour, _, count = render_rays(field_, estimator, origins, dirs, cfg, background)
    empty = field_.density(empty_points).mean() if empty_points is not None and len(empty_points) else None
    return colour, empty, count


def train_nerf(cfg: NerfTrainConfig) -> Path:
    out = Path(cfg.out)
    accelerator = make_accelerator(out, cfg.seed, device=cfg.device)
    device = accelerator.device
    scene: SceneData = load_scene(cfg.data, "train")
    field_, estimator = build(cfg)
    field_.to(device)
    estimator.to(device)
    optimizer = torch.optim.Adam(field_.parameters(), lr=cfg.learning_rate, eps=1e-15)
    sched = torch.optim.lr_scheduler.MultiStepLR(
        optimizer,
        milestones=[cfg.max_train_steps // 2, cfg.max_train_steps * 3 // 4, cfg.max_train_steps * 9 // 10],
        gamma=0.33,
    )
    step_fn, optimizer, sched = accelerator.prepare(TrainStep(field_), optimizer, sched)
    start = resume(accelerator, out, states={"estimator": estimator})

    n, h, w = len(scene), scene.height, scene.width
    pixels = scene.images.reshape(n, h * w, 3)
    alphas = scene.alphas.reshape(n, h * w, 1) if scene.alphas is not None else None
    curve, t0 = [], time.perf_counter()
    bar = progress(accelerator, cfg.max_train_steps, start, "nerf train")
    for step in range(start, cfg.max_train_steps):
        field_.train()
        rng = np.random.default_rng([cfg.seed, 11, accelerator.process_index, step])
        view = torch.as_tensor(rng.integers(0, n, cfg.rays_per_step))
        pix = torch.as_tensor(rng.integers(0, h * w, cfg.rays_per_step))
        xy = torch.stack([pix % w, pix // w], -1)
        o, d = camera_rays(scene.c2w[view], scene.focal, w, h, xy)
        target = pixels[view, pix]
        background = torch.as_tensor(rng.random((cfg.rays_per_step, 3)), dtype=torch.float32)
        if alphas is not None:  # re-composite the RGBA pixels onto this step's random background
            a = alphas[view, pix]
            rgb_premult = target - (1 - a) * 1.0  # undo the white background of load_scene
            target = rgb_premult + (1 - a) * background
        else:
            background = torch.ones(3)

        estimator.update_every_n_steps(
            step,
            lambda x: field_.density(x) * cfg.step_size,
            occ_thre=1e-2,
            warmup_steps=cfg.grid_warmup_steps,
            n=16,
        )
        pts = None  # points of cells the grid calls empty, for the density penalty
        if cfg.empty_weight > 0 and step >= cfg.grid_warmup_steps:
            gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
            pts = ((torch.rand(cfg.empty_points, 3, generator=gen) * 2 - 1) * cfg.aabb_size).to(device)
            pts = pts[~estimator.occupied(pts)]
        colour, empty, count = step_fn(
            render_and_penalty, estimator, o.to(device), d.to(device), cfg, background.to(device), pts
        )
        mse = F.mse_loss(colour, target.to(device))
        loss = mse if empty is None else mse + cfg.empty_weight * empty
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        optimizer.step()
        sched.step()
        bar.update(1)
        bar.set_postfix(
            loss=f"{loss.item():.4f}",
            psnr=f"{-10 * math.log10(max(mse.item(), 1e-10)):.1f}",
            spr=f"{count / cfg.rays_per_step:.0f}",
        )
        curve.append(
            {
                "step": step + 1,
                "seconds": time.perf_counter() - t0,
                "train_psnr": -10 * math.log10(max(mse.item(), 1e-10)),
            }
        )
        if (step + 1) % cfg.checkpointing_steps == 0 or step + 1 == cfg.max_train_steps:
            save_checkpoint(accelerator, out, step + 1, states={"estimator": estimator})
    bar.close()

    final = out / "model.safetensors"
    if accelerator.is_main_process:
        from safetensors.torch import save_file

        state = {f"field.{k}": v.detach().cpu().contiguous() for k, v in field_.state_dict().items()}
        state |= {f"estimator.{k}": v.detach().cpu().contiguous() for k, v in estimator.state_dict().items()}
        with atomic_file(final) as tmp:
            save_file(state, str(tmp), metadata={"config": json.dumps(asdict(cfg))})
        report = {"train_minutes_this_run": (time.perf_counter() - t0) / 60, "curve": curve[::10]}
        if cfg.eval_views > 0:
            report |= evaluate(field_, estimator, cfg, cfg.eval_views)
        with atomic_file(out / "report.json") as tmp:
            tmp.write_text(json.dumps(report, indent=2) + "\n")
    accelerator.end_training()
    return final


@torch.no_grad()
def evaluate(model, estimator, cfg: NerfTrainConfig, views: int) -> dict:
    test = load_scene(cfg.data, "test")
    idx = np.linspace(0, len(test) - 1, min(views, len(test))).round().astype(int)
    model.eval()
    psnrs, spr, secs = [], [], []
    for i in idx:
        t = time.perf_counter()
        img, s = render_image(model, estimator, test.c2w[i], test.focal, test.width, test.height, cfg)
        secs.append(time.perf_counter() - t)
        psnrs.append(psnr(img, test.images[i]))
        spr.append(s)
    return {
        "test_psnr": float(np.mean(psnrs)),
        "test_views": idx.tolist(),
        "samples_per_ray": float(np.mean(spr)),
        "render_seconds_per_view": float(np.mean(secs)),
    }


def load_field(path: str | Path):
    """(field, estimator, config) from a ``model.safetensors`` written by ``train_nerf``."""
    from safetensors import safe_open

    path = Path(path)
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.is_file():
        raise GenkitError(
            f"checkpoint {str(path)!r} not found (genkit nerf train writes OUT/model.safetensors)"
        )
    with reading(f"{str(path)!r} is not a genkit nerf checkpoint", (Exception,)):  # safetensors' own too
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
        known = {f.name for f in fields(NerfTrainConfig)}  # options that only training reads may differ
        cfg = NerfTrainConfig(**{k: v for k, v in json.loads(meta["config"]).items() if k in known})
    field_, estimator = build(cfg)
    field_.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("field.")})
    estimator.load_state_dict({k[10:]: v for k, v in state.items() if k.startswith("estimator.")})
    return field_.eval(), estimator, cfg
