"""``genkit train view-prior``: the view-conditioned text-to-image prior of genkit's text-to-3D.

The text-to-image recipe (``genkit train text2img``: v-prediction, zero terminal SNR, the UNet and a
small CLIP text encoder trained jointly) on views of the procedural 3-D objects
(``genkit.data.objects3d``), with the camera as ``CameraEncoder`` tokens appended to the text states
(``pipelines/view_prior``). Captions carry DreamFusion's view words ("side view of a red cube"), so the
folder also works as a plain Stable Diffusion prior without a camera. Condition dropout, independently:
the caption (empty prompt, camera kept: the unconditional branch of CFG) with ``caption_dropout``, the
camera tokens with ``camera_dropout`` (masked out of
cross-attention, which equals calling the UNet without them). The VAE comes from ``genkit train vae --data objects3d``; the
tokenizer is learned from the captions here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler, DPMSolverMultistepScheduler
from diffusers.optimization import get_cosine_schedule_with_warmup
from diffusers.training_utils import EMAModel

from genkit.data.objects3d import VIEWS, objects, render_pool
from genkit.models.camera import CameraEncoder
from genkit.models.presets import SCHEDULER_CONFIG, TEXT_ENCODER_PRESETS, UNET_PRESETS
from genkit.models.text import build_text_encoder, tokenize, train_tokenizer
from genkit.pipelines.view_prior import ViewConditionedPipeline
from genkit.training.latents import (
    LatentCache,
    LatentTrainConfig,
    diffusion_target,
    encode_posterior,
    save_pipeline,
)
from genkit.training.loop import make_accelerator, progress, resume, save_checkpoint
from genkit.training.text2img import build_unet
from genkit.utils import GenkitError, reading


@dataclass
class ViewPriorTrainConfig(LatentTrainConfig):
    vae: str = field(
        default="runs/vae3d/model", metadata={"help": "VAE folder (genkit train vae --data objects3d)"}
    )
    out: str = field(
        default="runs/view-prior",
        metadata={"help": "run folder: checkpoints/ and the final pipeline model/"},
    )
    num_train_images: int = field(
        default=8000, metadata={"help": "rendered views in the training pool (latents cached)"}
    )
    unet_preset: str = field(
        default="unet-shapes-s", metadata={"help": "UNet preset", "choices": list(UNET_PRESETS)}
    )
    text_encoder_preset: str = field(
        default="clip-text-shapes",
        metadata={"help": "text encoder preset", "choices": list(TEXT_ENCODER_PRESETS)},
    )
    camera_dropout: float = field(
        default=0.1, metadata={"help": "probability of training without the camera tokens"}
    )
    open_color: float = field(
        default=0.25,
        metadata={"help": "share of views captioned without their colour ('side view of a cube')"},
    )

    def __post_init__(self):
        super().__post_init__()
        if not 0 <= self.camera_dropout < 1:
            raise GenkitError("camera-dropout must be in [0, 1)")
        if not 0 <= self.open_color < 1:
            raise GenkitError("open-color must be in [0, 1)")


class ViewLatentCache(LatentCache):
    """``LatentCache`` of a rendered pool of object views, with each item's camera. A seeded ``open_color``
    share of the captions leaves the colour out, so that a prompt such as "a cube" has a distribution (the
    colours the cube is shown in) for the prior to learn: what VSD's particles keep and SDS collapses."""

    stream = 6

    def __init__(
        self,
        vae: AutoencoderKL,
        num_images: int,
        seed: int,
        split: str = "train",
        chunk: int = 500,
        open_color: float = 0.0,
    ):
        pool = render_pool(num_images, vae.config.sample_size, seed=seed, split=split)
        starts = range(0, num_images, chunk)
        batches = (pool["pixel_values"][i : i + chunk] for i in starts)
        self.mean, self.std = encode_posterior(vae, batches, len(starts))
        g = torch.Generator().manual_seed(seed * 1_000_003 + 17)
        named = (torch.rand(num_images, generator=g) >= open_color).tolist()
        self.captions = [  # "side view of a red cube" -> "side view of a cube"
            cap if c else cap.replace(f"a {obj.color} ", "a ")
            for cap, obj, c in zip(pool["captions"], pool["objects"], named, strict=True)
        ]
        self.cameras = pool["cameras"]


def caption_vocabulary() -> list[str]:
    """Every caption the objects can have (for the word-level tokenizer)."""
    return [o.caption(v, c) for o in objects("all") for v in (*VIEWS, None) for c in (True, False)]


def train_view_prior(cfg: ViewPriorTrainConfig) -> Path:
    out = Path(cfg.out)
    if not Path(cfg.vae).is_dir():
        raise GenkitError(f"VAE folder {cfg.vae!r} not found (genkit train vae --data objects3d first)")
    accelerator = make_accelerator(out, cfg.seed, cfg.mixed_precision, cfg.device)
    device = accelerator.device

    # --- components --------------------------------------------------------------------------------
    with reading(f"could not load the VAE from {cfg.vae!r}"):
        vae = AutoencoderKL.from_pretrained(cfg.vae).to(device).eval().requires_grad_(False)
    tokenizer = train_tokenizer(caption_vocabulary(), max_length=12)
    text_encoder = build_text_encoder(tokenizer, cfg.text_encoder_preset)
    width = text_encoder.config.hidden_size
    camera_encoder = CameraEncoder(hidden_size=width)
    unet = build_unet(cfg.unet_preset, vae, width)
    noise_scheduler = DDPMScheduler(**SCHEDULER_CONFIG)

    # --- data --------------------------------------------------------------------------------------
    cache = ViewLatentCache(vae, cfg.num_train_images, cfg.seed, open_color=cfg.open_color)
    input_ids, empty_ids = tokenize(tokenizer, cache.captions), tokenize(tokenizer, [""])

    # --- optimisation ------------------------------------------------------------------------------
    modules = (unet, text_encoder, camera_encoder)
    params = [p for m in modules for p in m.parameters()]
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=1e-2)
    lr_sched = get_cosine_schedule_with_warmup(optimizer, cfg.lr_warmup_steps, cfg.max_train_steps)
    unet, text_encoder, camera_encoder, optimizer, lr_sched = accelerator.prepare(
        unet, text_encoder, camera_encoder, optimizer, lr_sched
    )
    ema_params = [
        p for m in (unet, text_encoder, camera_encoder) for p in accelerator.unwrap_model(m).parameters()
    ]
    ema = EMAModel(ema_params, decay=cfg.ema_decay, use_ema_warmup=True, power=2 / 3)
    ema.to(device)
    start = resume(accelerator, out, states={"ema": ema})

    bar = progress(accelerator, cfg.max_train_steps, start, "train view-prior")
    for step in range(start, cfg.max_train_steps):
        latents, idx, drop = cache.batch(
            cfg.seed, accelerator.process_index, step, cfg.batch_size, cfg.caption_dropout
        )
        # the camera's dropout from the same (seed, step) stream as the batch, so a resumed run repeats it
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        no_camera = torch.rand(cfg.batch_size, generator=g) < cfg.camera_dropout
        latents = latents.to(device)
        ids = torch.where(drop[:, None], empty_ids, input_ids[idx]).to(device)
        noise = torch.randn_like(latents)
        timesteps = torch.randint(
            0, noise_scheduler.config.num_train_timesteps, (cfg.batch_size,), device=device
        )
        noisy = noise_scheduler.add_noise(latents, noise, timesteps)

        with accelerator.accumulate(*modules):
            text = text_encoder(ids)[0]
            cam = camera_encoder(cache.cameras[idx].to(device)).to(text.dtype)
            # a dropped camera's tokens are masked out of cross-attention: the same as no camera tokens
            mask = torch.ones(cfg.batch_size, text.shape[1] + cam.shape[1], device=device)
            mask[no_camera.to(device), text.shape[1] :] = 0
            states = torch.cat([text, cam], 1)
            pred = unet(noisy, timesteps, states, encoder_attention_mask=mask).sample
            target = diffusion_target(noise_scheduler, latents, noise, timesteps)
            loss = F.mse_loss(pred.float(), target.float())
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(params, 1.0)
            optimizer.step()
            lr_sched.step()
            optimizer.zero_grad(set_to_none=True)
        ema.step(ema_params)
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if (step + 1) % cfg.checkpointing_steps == 0 or step + 1 == cfg.max_train_steps:
            save_checkpoint(accelerator, out, step + 1, states={"ema": ema})
    bar.close()

    ema.copy_to(ema_params)
    pipe = ViewConditionedPipeline(
        vae=vae,
        text_encoder=accelerator.unwrap_model(text_encoder).eval(),
        tokenizer=tokenizer,
        unet=accelerator.unwrap_model(unet).eval(),
        scheduler=DPMSolverMultistepScheduler.from_config(noise_scheduler.config),
        camera_encoder=accelerator.unwrap_model(camera_encoder).eval(),
    )
    final = out / "model"
    if accelerator.is_main_process:
        save_pipeline(
            pipe, final, cfg.save_dtype, training={"command": "genkit train view-prior", **asdict(cfg)}
        )
    accelerator.end_training()
    return final
