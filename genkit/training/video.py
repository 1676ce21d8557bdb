"""``genkit train video``: AnimateDiff motion modules on a text-to-image pipeline, trained on moving shapes.

The image model (``--base``, the bundled ``text2img-shapes`` by default) stays frozen: its UNet becomes a
diffusers ``UNetMotionModel`` whose zero-initialised motion modules (``genkit.models.video``) are the only
trained layers, with the embedding rows of the motion words its tokenizer did not know ("moving", "up",
"growing"...), and optionally (``--image-lora-rank``) a LoRA on the image layers (``--image-lora-layers``:
their cross-attention or all of them), fused into the exported image UNet. Every frame of a clip shares the
clip's noise level and caption; the loss is the image model's (v-prediction on its zero-terminal-SNR
schedule) over all frames. The noise of a clip is PYoCo's mixed noise: a share (``--noise-shared``, 0.5) of
its variance is one draw for every frame, the rest drawn per frame, so each frame's noise is still N(0, I)
(the frozen image layers see what they know) while the frames start out correlated; with independent noise
the frames of a sample fell apart into groups that each chose their own layout. ``--reversed-pairs``
(experimental) fills half of each batch with the other half played backwards under the opposite caption and
the same noise. Latents of a seeded set of procedural clips (``genkit.data.video``) are cached once, as
``genkit train text2img`` caches images'.

The result is a diffusers ``AnimateDiffPipeline`` folder (``model/``) with the base's VAE, image UNet,
text encoder (plus the new rows), tokenizer (plus the new words) and scheduler, and the trained
``MotionAdapter``; ``genkit video`` and diffusers'
``AnimateDiffPipeline.from_pretrained`` load it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import AnimateDiffPipeline, DDPMScheduler
from diffusers.optimization import get_cosine_schedule_with_warmup
from diffusers.training_utils import EMAModel

from genkit.data.video import MOTIONS, VideoDataset, time_reversed
from genkit.loading import load_pipeline, resolve_model
from genkit.models.text import tokenize
from genkit.models.video import (
    IMAGE_LORA_TARGETS,
    NewRowsOnly,
    add_image_lora,
    add_words,
    image_unet_of,
    motion_adapter_of,
    video_unet,
)
from genkit.pipelines.video import path_discs, video_noise
from genkit.training.latents import LatentCache, diffusion_target, encode_posterior, save_pipeline
from genkit.training.loop import (
    device_field,
    make_accelerator,
    progress,
    resume,
    save_checkpoint,
    save_dtype_field,
)
from genkit.utils import GenkitError

__all__ = ["VideoLatentCache", "VideoTrainConfig", "build_video_pipeline", "train_video"]


@dataclass
class VideoTrainConfig:
    base: str = field(
        default="text2img-shapes",
        metadata={"help": "bundled model name or Stable Diffusion pipeline folder to animate"},
    )
    out: str = field(default="runs/video", metadata={"help": "run folder: checkpoints/ and model/"})
    frames: int = field(default=16, metadata={"help": "frames per training clip"})
    max_train_steps: int = field(default=1500, metadata={"help": "optimizer steps"})
    batch_size: int = field(default=4, metadata={"help": "clips per step"})
    learning_rate: float = field(default=1e-3, metadata={"help": "AdamW peak learning rate"})
    lr_warmup_steps: int = field(default=100, metadata={"help": "linear warm-up steps before cosine decay"})
    caption_dropout: float = field(
        default=0.1, metadata={"help": "probability of training on the empty prompt (for CFG)"}
    )
    num_train_clips: int = field(
        default=3000, metadata={"help": "size of the seeded training set whose latents are cached"}
    )
    motion_heads: int = field(default=4, metadata={"help": "attention heads of each motion module"})
    image_lora_rank: int = field(
        default=0,
        metadata={
            "help": "rank of a LoRA on the image layers (--image-lora-layers), trained with the motion "
            "modules and fused into the exported image UNet (0: none)"
        },
    )
    image_lora_layers: str = field(
        default="cross-attention",
        metadata={
            "help": "where the image-layer LoRA goes: the cross-attention, or every attention and "
            "feed-forward projection and resnet convolution of the image layers",
            "choices": list(IMAGE_LORA_TARGETS),
        },
    )
    noise_shared: float = field(
        default=0.5,
        metadata={
            "help": "fraction of the noise variance shared by the frames of a clip (PYoCo's mixed noise; "
            "sampling draws the same prior)"
        },
    )
    reversed_pairs: bool = field(
        default=False,
        metadata={
            "help": "experimental: half of each batch is the other half played backwards, with the opposite "
            "caption (left/right, up/down, growing/shrinking) and the same noise and noise level, so that "
            "only the caption can tell the two apart (clips whose reversal is held out stay as they are)"
        },
    )
    noise_warp: bool = field(
        default=False,
        metadata={
            "help": "carry a disc of each clip's shared noise along its shape's path (noise warping, as "
            "Go-with-the-Flow); sampling then carries it along a path drawn for the prompt's motion words"
        },
    )
    temporal_loss: float = field(
        default=0.0,
        metadata={
            "help": "weight of a second loss on the change of the prediction error from one frame to the "
            "next (0: none), so that an error that differs between frames (a background whose grey drifts) "
            "costs more than one shared by all frames"
        },
    )
    temporal_loss_background: bool = field(
        default=False,
        metadata={
            "help": "apply --temporal-loss only outside each clip's shape (the disc of its path in both "
            "frames of a pair), so that the shape's own motion and growth are not damped"
        },
    )
    ema_decay: float = field(default=0.999, metadata={"help": "max EMA decay of the saved weights"})
    seed: int = field(default=0, metadata={"help": "seed of data, noise and initialisation"})
    checkpointing_steps: int = field(
        default=250, metadata={"help": "save a resumable checkpoint every N steps"}
    )
    save_dtype: str = save_dtype_field("pipeline")
    device: str = device_field()

    def __post_init__(self):
        if (
            min(
                self.max_train_steps,
                self.batch_size,
                self.checkpointing_steps,
                self.num_train_clips,
                self.motion_heads,
            )
            <= 0
        ):
            raise GenkitError(
                "max-train-steps, batch-size, checkpointing-steps, num-train-clips and motion-heads "
                "must be positive"
            )
        if not 2 <= self.frames <= 32:
            raise GenkitError(f"--frames must be in [2, 32], got {self.frames}")
        if not 0 <= self.caption_dropout < 1:
            raise GenkitError("caption-dropout must be in [0, 1)")
        if self.image_lora_rank < 0:
            raise GenkitError("--image-lora-rank must be >= 0")
        if self.image_lora_layers not in IMAGE_LORA_TARGETS:
            raise GenkitError(f"--image-lora-layers must be one of {', '.join(IMAGE_LORA_TARGETS)}")
        if self.reversed_pairs and self.batch_size % 2:
            raise GenkitError(f"--reversed-pairs needs an even --batch-size, got {self.batch_size}")
        if self.temporal_loss < 0:
            raise GenkitError("--temporal-loss must be >= 0")
        if self.temporal_loss_background and not self.temporal_loss:
            raise GenkitError("--temporal-loss-background needs a --temporal-loss weight > 0")
        if self.temporal_loss_background and self.reversed_pairs:
            raise GenkitError("--temporal-loss-background does not work with --reversed-pairs")
        if not 0 <= self.noise_shared < 1:
            raise GenkitError("--noise-shared must be in [0, 1)")
        if self.noise_warp and not self.noise_shared:
            raise GenkitError("--noise-warp moves the shared part of the noise: it needs --noise-shared > 0")
        if self.noise_warp and self.reversed_pairs:
            raise GenkitError("--noise-warp and --reversed-pairs do not go together (pairs share one noise)")


class VideoLatentCache(LatentCache):
    """The VAE posterior (mean, std, times the scaling factor) of every frame of a seeded set of clips,
    (N, C, T, h, w) as UNetMotionModel takes them, and the captions; batches as ``LatentCache``'s."""

    stream = 5

    def __init__(self, vae, num_clips: int, frames: int, seed: int, chunk: int = 64):
        self.dataset = VideoDataset(num_clips, frames, vae.config.sample_size, seed=seed)
        starts = range(0, num_clips, chunk)
        batches = (self.dataset.batch(range(i, min(i + chunk, num_clips)))["pixel_values"] for i in starts)
        mean, std = encode_posterior(vae, batches, len(starts), "encode clips")  # (N, T, C, h, w)
        # contiguous: torch 2.13's CPU convolution backward crashes on the transposed strides for some
        # frame counts (a segfault at 2-6 frames)
        self.mean, self.std = (v.transpose(1, 2).contiguous() for v in (mean, std))
        self.captions = [a.caption() for a in self.dataset.attributes]
        # each clip's shape path, for --noise-warp and --temporal-loss-background
        self.paths = [self.dataset.path(i) for i in range(num_clips)]
        # each clip played backwards is a clip of the opposite motion, unless that triple is held out
        reversed_attributes = [time_reversed(a) for a in self.dataset.attributes]
        self.reversible = torch.tensor([not a.heldout for a in reversed_attributes])
        self.reversed_captions = [
            r.caption() if ok else c
            for r, ok, c in zip(reversed_attributes, self.reversible.tolist(), self.captions, strict=True)
        ]


def build_video_pipeline(vae, text_encoder, tokenizer, image_unet, motion_adapter, scheduler):
    """An ``AnimateDiffPipeline`` that saves as AnimateDiff models are shared: the image UNet
    (``UNet2DConditionModel``) and the ``MotionAdapter`` as two components (each a few MB in fp16), which
    the pipeline's constructor joins into a ``UNetMotionModel`` when diffusers loads the folder."""
    pipe = AnimateDiffPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=image_unet,
        motion_adapter=motion_adapter,
        scheduler=scheduler,
    )
    pipe.register_modules(unet=image_unet)  # the constructor registered the joined UNetMotionModel
    return pipe


def reversed_pairs(latents, idx, drop, reversible, input_ids, reversed_ids):
    """``--reversed-pairs``: clips ``idx`` (their ``latents`` (N, C, T, h, w), caption ``drop`` mask), then
    the same clips played backwards with the opposite captions (a clip whose reversal is held out, i.e. not
    ``reversible[i]``, as it is, with its own caption). Returns (latents, caption ids, drop) of 2N clips."""
    flip = reversible[idx][:, None, None, None, None]
    back = torch.where(flip, latents.flip(2), latents)
    return torch.cat([latents, back]), torch.cat([input_ids[idx], reversed_ids[idx]]), drop.repeat(2)


def frame_difference_loss(
    pred: torch.Tensor, target: torch.Tensor, where: torch.Tensor | None = None
) -> torch.Tensor:
    """``--temporal-loss``: the mean square of the change of the error ``pred - target`` (N, C, T, h, w)
    between consecutive frames. Zero for an error shared by all frames; twice the plain loss for an error
    that is independent from frame to frame. ``where`` (N, 1, T - 1, h, w) bool keeps only those changes
    (the others count as 0 in the mean)."""
    error = pred.float() - target.float()
    change = (error[:, :, 1:] - error[:, :, :-1]).pow(2)
    if where is not None:
        change = change * where
    return change.mean()


def outside_paths(paths, frames: int, h: int, w: int) -> torch.Tensor:
    """``--temporal-loss-background``: (N, 1, T - 1, h, w), True where neither frame of a pair of
    consecutive frames has clip i's shape (the disc of ``paths[i]``, as ``video_noise`` carries it)."""
    discs = torch.stack([path_discs(p, frames, h, w) for p in paths])
    return ~(discs[:, 1:] | discs[:, :-1])[:, None]


def motion_words() -> list[str]:
    return sorted({w for m in MOTIONS for w in m.split()})


def train_video(cfg: VideoTrainConfig) -> Path:
    out = Path(cfg.out)
    base = load_pipeline(resolve_model(cfg.base), device="cpu")
    if type(base).__name__ != "StableDiffusionPipeline":
        raise GenkitError(
            f"--base must be a Stable Diffusion pipeline, {cfg.base!r} is a {type(base).__name__}"
        )
    accelerator = make_accelerator(out, cfg.seed, "no", cfg.device)
    device = accelerator.device

    # --- components: the frozen image model, motion modules, the motion words ---------------------------
    vae, tokenizer, text_encoder = (
        base.vae.to(device).requires_grad_(False),
        base.tokenizer,
        base.text_encoder,
    )
    old_rows = text_encoder.get_input_embeddings().weight.shape[0]
    added = add_words(tokenizer, text_encoder, motion_words())
    text_encoder.requires_grad_(False)
    embedding = text_encoder.get_input_embeddings().weight
    embedding.requires_grad_(True)
    embedding.register_hook(NewRowsOnly(old_rows))
    unet = video_unet(base.unet, heads=cfg.motion_heads)
    unet.freeze_unet2d_params()
    if cfg.image_lora_rank:
        add_image_lora(unet, cfg.image_lora_rank, IMAGE_LORA_TARGETS[cfg.image_lora_layers])
    noise_scheduler = DDPMScheduler.from_config(base.scheduler.config)

    cache = VideoLatentCache(vae, cfg.num_train_clips, cfg.frames, cfg.seed)
    input_ids, empty_ids = tokenize(tokenizer, cache.captions), tokenize(tokenizer, [""])
    reversed_ids = tokenize(tokenizer, cache.reversed_captions)

    # --- optimisation: motion modules (+ LoRA), new embedding rows (no weight decay on the embedding) ----
    motion = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [{"params": motion, "weight_decay": 1e-2}, {"params": [embedding], "weight_decay": 0.0}],
        lr=cfg.learning_rate,
    )
    lr_sched = get_cosine_schedule_with_warmup(optimizer, cfg.lr_warmup_steps, cfg.max_train_steps)
    unet, text_encoder, optimizer, lr_sched = accelerator.prepare(unet, text_encoder, optimizer, lr_sched)
    trained = motion + [embedding]
    ema = EMAModel(trained, decay=cfg.ema_decay, use_ema_warmup=True, power=2 / 3)
    ema.to(device)
    start = resume(accelerator, out, states={"ema": ema})

    bar = progress(accelerator, cfg.max_train_steps, start, "train video")
    for step in range(start, cfg.max_train_steps):
        latents, idx, drop = cache.batch(
            cfg.seed, accelerator.process_index, step, cfg.batch_size, cfg.caption_dropout
        )
        ids = input_ids[idx]
        n = cfg.batch_size // 2 if cfg.reversed_pairs else cfg.batch_size
        paths = [cache.paths[i] for i in idx[:n].tolist()]
        noise = video_noise(
            (n, *latents.shape[1:]), cfg.noise_shared, device=device, paths=paths if cfg.noise_warp else None
        )
        timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (n,), device=device)
        if cfg.reversed_pairs:
            latents, ids, drop = reversed_pairs(
                latents[:n], idx[:n], drop[:n], cache.reversible, input_ids, reversed_ids
            )
            noise, timesteps = noise.repeat(2, 1, 1, 1, 1), timesteps.repeat(2)
        latents = latents.to(device)
        ids = torch.where(drop[:, None], empty_ids, ids).to(device)
        noisy = noise_scheduler.add_noise(latents, noise, timesteps)

        with accelerator.accumulate(unet, text_encoder):
            # the pipeline's layout: one copy of the prompt's states per frame
            states = text_encoder(ids)[0].repeat_interleave(cfg.frames, dim=0)
            pred = unet(noisy, timesteps, states).sample
            target = diffusion_target(noise_scheduler, latents, noise, timesteps)
            loss = F.mse_loss(pred.float(), target.float())
            if cfg.temporal_loss:
                where = None
                if cfg.temporal_loss_background:
                    where = outside_paths(paths, cfg.frames, *latents.shape[-2:]).to(device)
                loss = loss + cfg.temporal_loss * frame_difference_loss(pred, target, where)
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(trained, 1.0)
            optimizer.step()
            lr_sched.step()
            optimizer.zero_grad(set_to_none=True)
        ema.step(trained)
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{lr_sched.get_last_lr()[0]:.1e}")
        if (step + 1) % cfg.checkpointing_steps == 0 or step + 1 == cfg.max_train_steps:
            save_checkpoint(accelerator, out, step + 1, states={"ema": ema})
    bar.close()

    # --- export: EMA weights as an AnimateDiff pipeline ---------------------------------------------------
    ema.copy_to(trained)
    video = accelerator.unwrap_model(unet).eval()
    pipe = build_video_pipeline(
        vae=vae,
        text_encoder=accelerator.unwrap_model(text_encoder).eval(),
        tokenizer=tokenizer,
        image_unet=image_unet_of(video, base.unet),  # the frozen image layers, the LoRA fused in
        motion_adapter=motion_adapter_of(video),
        scheduler=base.scheduler,
    )
    final = out / "model"
    if accelerator.is_main_process:
        training = {
            **asdict(cfg),
            "added_words": added,
            "train_frames": cfg.frames,
            "noise_shared": cfg.noise_shared,
        }
        save_pipeline(pipe, final, cfg.save_dtype, training=training)
    accelerator.end_training()
    return final
