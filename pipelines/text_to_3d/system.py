"""Text-to-3D by score distillation: a hash-grid field optimised so that its renders please a 2-D prior.

Top to bottom (``text_to_3d``):
1. ``ObjectField``: density and albedo from a multiresolution hash grid (``genkit.render.encodings``) and a
   small MLP, with threestudio's density blob (``blob_density * (1 - r / blob_radius)`` added before the
   softplus) so optimisation starts from a ball rather than from nothing.
2. Each step renders ``batch_views`` random cameras (azimuth U[0, 360), elevation in the prior's range) at
   the prior's resolution by volume rendering (stratified samples along each ray, composited on the
   prior's background grey).
3. The renders go through the prior's VAE encoder (with a graph) to latents; the guidance
   (``genkit.distill.score_distillation``: SDS, or VSD with a LoRA fake score on the prior's own UNet)
   gives their gradient, for the prompt with DreamFusion's view word of each camera ("side view of a red
   cube") and, for a view-conditioned prior, the camera tokens.
4. At the end: a mesh by marching cubes (``genkit.render.mesh``; an empty level set is an error, never an
   empty file), a turntable video and the field's weights.

``--particles N`` optimises N fields at once (ProlificDreamer's particles): with VSD they share one LoRA
fake score, which learns the distribution of all their renders, so particles that look alike are pushed
apart toward other modes of the prior (VSD's diversity); with SDS each particle's gradient is its own, as
in N separate runs. Particle k is written to ``out/particle-k/`` (``out/`` itself when N = 1).

Resumable: accelerate checkpoints of the fields, their optimiser and (VSD) the LoRA and its optimiser
every ``checkpointing_steps``; a run started again with the same ``--out`` continues. Cameras, timesteps
and noise of step k come from generators seeded by (seed, k).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genkit.data.objects3d import BACKGROUND, CAMERA_RADIUS, view_rays, view_word
from genkit.render.encodings import HashGridEncoding
from genkit.render.volume import render_weight_from_density
from genkit.training.loop import device_field, make_accelerator, progress, resume, save_checkpoint
from genkit.utils import GenkitError, atomic_file

__all__ = ["ObjectField", "TextTo3DConfig", "load_object_field", "render_field", "text_to_3d", "turntable"]


class ObjectField(nn.Module):
    """Density (softplus, with a central blob) and albedo in [0, 1] at points of the box [-1, 1]^3."""

    def __init__(
        self,
        levels: int = 8,
        log2_table_size: int = 14,
        max_resolution: int = 128,
        hidden: int = 32,
        blob_density: float = 10.0,
        blob_radius: float = 0.5,
    ):
        super().__init__()
        self.encoding = HashGridEncoding(levels, 2, log2_table_size, 16, max_resolution, backend="torch")
        self.mlp = nn.Sequential(nn.Linear(self.encoding.out_dim, hidden), nn.ReLU(), nn.Linear(hidden, 4))
        self.blob_density, self.blob_radius = blob_density, blob_radius

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(density (N,), albedo (N, 3)) at points (N, 3); zero density outside the box."""
        inside = (x.abs() <= 1).all(-1)
        h = self.mlp(self.encoding(((x + 1) / 2).clamp(0, 1)))
        blob = self.blob_density * (1 - x.norm(dim=-1) / self.blob_radius)
        return F.softplus(h[:, 0] + blob) * inside, torch.sigmoid(h[:, 1:])

    def density(self, x: torch.Tensor) -> torch.Tensor:
        return self(x)[0]


def render_field(
    field_: ObjectField,
    cameras: torch.Tensor,
    resolution: int,
    samples: int = 48,
    generator: torch.Generator | None = None,
    background: float = BACKGROUND,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (B, 3, R, R) in [0, 1], opacity (B, 1, R, R)) of ``cameras`` (B, 2) = (azimuth, elevation)
    in degrees, with the procedural data's camera (``genkit.data.objects3d``). ``generator`` jitters the
    samples (stratified; None: midpoints)."""
    device = next(field_.parameters()).device
    o, d, _ = view_rays(cameras[:, 0].tolist(), cameras[:, 1].tolist(), resolution, device)
    near, far = CAMERA_RADIUS - math.sqrt(3), CAMERA_RADIUS + math.sqrt(3)
    edges = torch.linspace(near, far, samples + 1, device=device)
    jitter = 0.5 if generator is None else torch.rand(len(o), samples, generator=generator).to(device)
    step = (far - near) / samples
    mid = edges[:-1] + jitter * step  # (N, S) or (S,)
    mid = mid.expand(len(o), samples)
    pts = o[:, None] + mid[..., None] * d[:, None]
    sigma, albedo = field_(pts.reshape(-1, 3))
    sigma, albedo = sigma.view(len(o), samples), albedo.view(len(o), samples, 3)
    weights, _, _ = render_weight_from_density(mid - step / 2, mid + step / 2, sigma)
    acc = weights.sum(-1, keepdim=True)
    rgb = (weights[..., None] * albedo).sum(1) + (1 - acc) * background
    b = len(cameras)
    to_image = lambda v: v.view(b, resolution, resolution, -1).permute(0, 3, 1, 2)  # noqa: E731
    return to_image(rgb), to_image(acc)


@dataclass
class TextTo3DConfig:
    prompt: str = field(
        default="",
        metadata={"help": "the object, e.g. 'a red cube' (view words are added)", "positional": True},
    )
    method: str = field(default="sds", metadata={"help": "score distillation", "choices": ["sds", "vsd"]})
    prior: str = field(
        default="view-prior-objects",
        metadata={
            "help": "bundled view prior or a Stable Diffusion-structured folder (genkit train view-prior)"
        },
    )
    out: str = field(default="outputs/text-to-3d", metadata={"help": "output folder"})
    max_train_steps: int = field(default=1200, metadata={"help": "optimisation steps"})
    batch_views: int = field(default=4, metadata={"help": "cameras rendered per step and particle"})
    particles: int = field(
        default=1,
        metadata={"help": "objects optimised together (VSD: sharing the LoRA fake score); out/particle-k/"},
    )
    samples: int = field(default=48, metadata={"help": "samples per ray"})
    grid_resolution: int = field(
        default=64, metadata={"help": "finest hash-grid resolution (about twice the prior's image side)"}
    )
    learning_rate: float = field(default=1e-2, metadata={"help": "Adam learning rate of the field"})
    guidance_scale: float = field(
        default=0.0, metadata={"help": "CFG scale, diffusers' convention (0: 20 for SDS, 7.5 for VSD)"}
    )
    t_min: float = field(default=0.02, metadata={"help": "smallest timestep (fraction of T)"})
    t_max: float = field(default=0.98, metadata={"help": "largest timestep at the start"})
    t_max_end: float = field(default=0.5, metadata={"help": "largest timestep after annealing"})
    anneal_steps: int = field(default=600, metadata={"help": "steps over which t_max anneals"})
    elevation_min: float = field(default=-10.0, metadata={"help": "lowest camera elevation (degrees)"})
    elevation_max: float = field(default=60.0, metadata={"help": "highest camera elevation (degrees)"})
    lora_rank: int = field(default=4, metadata={"help": "VSD: rank of the LoRA fake score"})
    lora_learning_rate: float = field(default=1e-3, metadata={"help": "VSD: LoRA learning rate"})
    mesh_resolution: int = field(default=96, metadata={"help": "marching-cubes grid"})
    mesh_threshold: float = field(default=5.0, metadata={"help": "density level of the mesh surface"})
    video_frames: int = field(default=36, metadata={"help": "turntable frames"})
    video_resolution: int = field(default=64, metadata={"help": "turntable frame side"})
    seed: int = field(default=0, metadata={"help": "seed of cameras, noise and initialisation"})
    checkpointing_steps: int = field(default=200, metadata={"help": "save a resumable checkpoint every N"})
    device: str = device_field()

    def __post_init__(self):
        if not self.prompt.strip():
            raise GenkitError("a prompt is needed, e.g. genkit text-to-3d 'a red cube'")
        if not self.prior:
            raise GenkitError("--prior must name a bundled view prior or a pipeline folder")
        sizes = (
            self.max_train_steps,
            self.batch_views,
            self.particles,
            self.samples,
            self.checkpointing_steps,
        )
        if min(sizes) <= 0 or self.grid_resolution < 16:
            raise GenkitError(
                "max-train-steps, batch-views, particles, samples and checkpointing-steps must be positive, "
                "grid-resolution at least 16"
            )
        if not -89 <= self.elevation_min < self.elevation_max <= 89:
            raise GenkitError("need -89 <= elevation-min < elevation-max <= 89")
        if self.guidance_scale < 0 or self.lora_rank <= 0 or self.video_frames < 2:
            raise GenkitError("guidance-scale must be >= 0, lora-rank positive, video-frames at least 2")

    @property
    def scale(self) -> float:
        return self.guidance_scale or (20.0 if self.method == "sds" else 7.5)


class _LoRAState:
    """The trainable (LoRA) tensors of a module, as a checkpointable state."""

    def __init__(self, module: nn.Module):
        self.params = {n: p for n, p in module.named_parameters() if p.requires_grad}

    def state_dict(self) -> dict:
        return {n: p.detach() for n, p in self.params.items()}

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            for n, p in self.params.items():
                p.copy_(state[n])


def _check_words(prior, prompt: str) -> None:
    tok = prior.teacher.pipe.tokenizer
    unknown = [
        w
        for w in prompt.lower().replace(",", " ").split()
        if tok.convert_tokens_to_ids(w) == tok.unk_token_id
    ]
    if unknown:
        raise GenkitError(
            f"the prior does not know the word(s) {', '.join(map(repr, unknown))} in {prompt!r}"
        )


def text_to_3d(cfg: TextTo3DConfig) -> Path:
    from genkit.distill.score_distillation import SDS, VSD, PipelinePrior, TimestepRange

    out = Path(cfg.out)
    prior = PipelinePrior(cfg.prior)
    _check_words(prior, cfg.prompt)
    accelerator = make_accelerator(out, cfg.seed, "no", cfg.device)
    device = accelerator.device
    resolution = prior.teacher.pipe.vae.config.sample_size
    view_prior = getattr(prior.teacher.pipe, "camera_encoder", None) is not None

    torch.manual_seed(cfg.seed)
    fields = nn.ModuleList(ObjectField(max_resolution=cfg.grid_resolution) for _ in range(cfg.particles))
    optimizer = torch.optim.Adam(fields.parameters(), lr=cfg.learning_rate, eps=1e-15)
    timesteps = TimestepRange(cfg.t_min, cfg.t_max, cfg.t_max_end, cfg.anneal_steps)
    states = {}
    if cfg.method == "vsd":
        fake, lora = prior.lora_fake(cfg.lora_rank)
        fake_opt = torch.optim.AdamW(lora, lr=cfg.lora_learning_rate)
        guide = VSD(
            prior.eps(cfg.scale), prior.eps(1.0, model=fake), fake_opt, prior.alphas_cumprod, timesteps
        )
        fields, optimizer, fake_opt = accelerator.prepare(fields, optimizer, fake_opt)
        guide.fake_optimizer = fake_opt
        states["lora"] = _LoRAState(fake)
    else:
        guide = SDS(prior.eps(cfg.scale), prior.alphas_cumprod, timesteps)
        fields, optimizer = accelerator.prepare(fields, optimizer)
    start = resume(accelerator, out, states=states)

    n = cfg.batch_views * cfg.particles  # cameras per step: particle k renders k * batch_views ...
    bar = progress(accelerator, cfg.max_train_steps, start, f"text-to-3d {cfg.method}")
    for step in range(start, cfg.max_train_steps):
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        az = torch.rand(n, generator=g) * 360
        el = cfg.elevation_min + torch.rand(n, generator=g) * (cfg.elevation_max - cfg.elevation_min)
        cams = torch.stack([az, el], 1)
        cond = {"prompts": [f"{view_word(a, e)} view of {cfg.prompt}" for a, e in cams.tolist()]}
        if view_prior:
            cond["camera"] = cams
        images = torch.cat(
            [
                render_field(f, c, resolution, cfg.samples, g)[0]
                for f, c in zip(fields, cams.split(cfg.batch_views), strict=True)
            ]
        )
        latents = prior.encode(images)
        if cfg.method == "vsd":
            guide.fake_step(latents, g, **cond)
        loss = guide.loss(latents, step, g, **cond)
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if (step + 1) % cfg.checkpointing_steps == 0 or step + 1 == cfg.max_train_steps:
            save_checkpoint(accelerator, out, step + 1, states=states)
    bar.close()

    # --- outputs -------------------------------------------------------------------------------------
    for k, field_ in enumerate(accelerator.unwrap_model(fields).eval()):
        folder = out if cfg.particles == 1 else out / f"particle-{k}"
        _write_object(field_, folder, cfg, k, device)
    accelerator.end_training()
    return out


def _write_object(field_: ObjectField, folder: Path, cfg: TextTo3DConfig, particle: int, device) -> None:
    """The field's weights, its mesh (obj, glb), a turntable (mp4, gif) and ``metadata.json`` in ``folder``."""
    from safetensors.torch import save_file

    from genkit.render.mesh import extract_mesh, save_mesh
    from genkit.video import write_clip

    folder.mkdir(parents=True, exist_ok=True)
    with atomic_file(folder / "field.safetensors") as tmp:
        save_file({k: v.contiguous() for k, v in field_.state_dict().items()}, str(tmp))
    with torch.no_grad():
        mesh = extract_mesh(
            field_.density,
            [-1, -1, -1, 1, 1, 1],
            cfg.mesh_resolution,
            cfg.mesh_threshold,
            device=device,
        )
    for ext in ("obj", "glb"):
        save_mesh(mesh, folder / f"mesh.{ext}")
    frames = turntable(field_, cfg.video_frames, cfg.video_resolution, cfg.samples)
    write_clip(frames, folder / "turntable.mp4", fps=12)
    write_clip(frames, folder / "turntable.gif", fps=12)
    with atomic_file(folder / "metadata.json") as tmp:
        meta = {
            **asdict(cfg),
            "guidance_scale": cfg.scale,
            "particle": particle,
            "vertices": len(mesh.vertices),
        }
        tmp.write_text(json.dumps(meta, indent=2))


def load_object_field(folder: str | Path) -> ObjectField:
    """The field a ``genkit text-to-3d`` run wrote to ``folder`` (its grid as ``metadata.json`` records)."""
    from safetensors.torch import load_file

    from genkit.utils import reading

    folder = Path(folder)
    with reading(f"{str(folder)!r} is not a finished genkit text-to-3d run", (Exception,)):
        meta = json.loads((folder / "metadata.json").read_text())
        field_ = ObjectField(max_resolution=meta["grid_resolution"])
        field_.load_state_dict(load_file(folder / "field.safetensors"))
    return field_.eval()


@torch.no_grad()
def turntable(
    field_: ObjectField, frames: int, resolution: int, samples: int, elevation: float = 15.0
) -> np.ndarray:
    """(frames, R, R, 3) uint8 views at ``elevation`` going once around the object."""
    cams = torch.tensor([[360 * i / frames, elevation] for i in range(frames)])
    images = torch.cat(
        [render_field(field_, cams[i : i + 8], resolution, samples)[0] for i in range(0, frames, 8)]
    )
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
