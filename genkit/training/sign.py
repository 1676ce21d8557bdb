"""``genkit train sign``: the text-to-sign-motion diffusion model (``SignMotionPipeline``).

Top to bottom: a seeded pool of procedural sentences of the training split (``genkit.data.signs``, with
jitter) is generated once; the features are normalised per dimension (the statistics are saved in the
model); each step noises a batch with the DDPM schedule and the transformer predicts the clean motion
(MDM's x0 objective), with a forward-kinematics loss on the joint positions (hands included) beside the
feature loss. The caption is dropped with ``caption_dropout`` for classifier-free guidance; EMA weights are
saved (diffusers ``EMAModel``); accelerate checkpoints make it resumable.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, DPMSolverMultistepScheduler
from diffusers.optimization import get_cosine_schedule_with_warmup
from diffusers.training_utils import EMAModel
from tqdm import tqdm

from genkit.data.signs import GLOSSES, SignDataset, motion_joints, sentences
from genkit.models.presets import TEXT_ENCODER_PRESETS
from genkit.models.sign_motion import SignMotionTransformer
from genkit.models.text import build_text_encoder, tokenize, train_tokenizer
from genkit.pipelines.sign import SignMotionPipeline
from genkit.training.latents import save_pipeline
from genkit.training.loop import (
    device_field,
    make_accelerator,
    progress,
    resume,
    save_checkpoint,
    save_dtype_field,
)
from genkit.utils import GenkitError

# DDPM schedule of the motion model: x0 prediction (MDM), cosine noise schedule
SIGN_SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="sample", clip_sample=False
)


@dataclass
class SignTrainConfig:
    out: str = field(
        default="runs/sign", metadata={"help": "run folder: checkpoints/ and the pipeline model/"}
    )
    max_train_steps: int = field(default=3000, metadata={"help": "optimizer steps"})
    batch_size: int = field(default=32, metadata={"help": "sentences per step"})
    learning_rate: float = field(default=4e-4, metadata={"help": "AdamW peak learning rate"})
    lr_warmup_steps: int = field(default=200, metadata={"help": "linear warm-up before cosine decay"})
    num_train_motions: int = field(default=6000, metadata={"help": "procedural sentences generated once"})
    caption_dropout: float = field(default=0.1, metadata={"help": "probability of the empty prompt (CFG)"})
    position_weight: float = field(default=1.0, metadata={"help": "weight of the joint-position loss"})
    hidden: int = field(default=128, metadata={"help": "transformer width"})
    layers: int = field(default=4, metadata={"help": "transformer decoder layers"})
    text_encoder_preset: str = field(
        default="clip-text-shapes",
        metadata={"help": "text encoder preset", "choices": list(TEXT_ENCODER_PRESETS)},
    )
    ema_decay: float = field(default=0.999, metadata={"help": "max EMA decay of the saved weights"})
    seed: int = field(default=0, metadata={"help": "seed of data, noise and initialisation"})
    checkpointing_steps: int = field(
        default=500, metadata={"help": "save a resumable checkpoint every N steps"}
    )
    save_dtype: str = save_dtype_field("pipeline")
    device: str = device_field()

    def __post_init__(self):
        if min(self.max_train_steps, self.batch_size, self.checkpointing_steps, self.num_train_motions) <= 0:
            raise GenkitError(
                "max-train-steps, batch-size, checkpointing-steps and num-train-motions must be positive"
            )
        if not 0 <= self.caption_dropout < 1:
            raise GenkitError("caption-dropout must be in [0, 1)")
        if self.hidden % 4 or self.hidden <= 0 or self.layers <= 0:
            raise GenkitError("hidden must be a positive multiple of 4 and layers positive")


def sign_vocabulary() -> list[str]:
    return [" ".join(s) for s in sentences("all")] + list(GLOSSES)


def motion_pool(
    num: int, seed: int, split: str = "train", desc: str = "generate motions"
) -> tuple[torch.Tensor, list[str]]:
    """(motions (num, T, 340), captions) of ``SignDataset(num, seed, split)``."""
    ds = SignDataset(num, seed=seed, split=split)
    items = [ds[i] for i in tqdm(range(num), desc=desc, unit="sentence")]
    return torch.stack([it["motion"] for it in items]), [it["caption"] for it in items]


def train_sign(cfg: SignTrainConfig) -> Path:
    out = Path(cfg.out)
    accelerator = make_accelerator(out, cfg.seed, "no", cfg.device)
    device = accelerator.device

    # --- data and components -----------------------------------------------------------------------
    motions, captions = motion_pool(cfg.num_train_motions, cfg.seed * 1000 + 7)
    joints = motion_joints(motions)  # ground-truth positions for the position loss
    tokenizer = train_tokenizer(sign_vocabulary(), max_length=8)
    text_encoder = build_text_encoder(tokenizer, cfg.text_encoder_preset)
    torch.manual_seed(cfg.seed)
    model = SignMotionTransformer(
        hidden=cfg.hidden,
        layers=cfg.layers,
        text_dim=text_encoder.config.hidden_size,
        frames=motions.shape[1],
    )
    model.feature_mean.copy_(motions.mean((0, 1)))
    model.feature_std.copy_(motions.std((0, 1)).clamp_min(1e-3))  # constant dimensions (legs) stay put
    scheduler = DDPMScheduler(**SIGN_SCHEDULER_CONFIG)
    ids, empty = tokenize(tokenizer, captions), tokenize(tokenizer, [""])

    params = [*model.parameters(), *text_encoder.parameters()]
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=1e-2)
    lr_sched = get_cosine_schedule_with_warmup(optimizer, cfg.lr_warmup_steps, cfg.max_train_steps)
    model, text_encoder, optimizer, lr_sched = accelerator.prepare(model, text_encoder, optimizer, lr_sched)
    ema_params = [p for m in (model, text_encoder) for p in accelerator.unwrap_model(m).parameters()]
    ema = EMAModel(ema_params, decay=cfg.ema_decay, use_ema_warmup=True, power=2 / 3)
    ema.to(device)
    start = resume(accelerator, out, states={"ema": ema})
    raw = accelerator.unwrap_model(model)

    bar = progress(accelerator, cfg.max_train_steps, start, "train sign")
    for step in range(start, cfg.max_train_steps):
        # batch, dropout, timesteps and noise of step k: a function of (seed, process, k), so a resumed
        # run repeats them
        g = torch.Generator().manual_seed((cfg.seed * 1000 + accelerator.process_index) * 1_000_003 + step)
        idx = torch.randint(len(motions), (cfg.batch_size,), generator=g)
        drop = torch.rand(cfg.batch_size, generator=g) < cfg.caption_dropout
        t = torch.randint(0, scheduler.config.num_train_timesteps, (cfg.batch_size,), generator=g)
        x0 = raw.normalize(motions[idx].to(device))
        noise = torch.randn(x0.shape, generator=g).to(device)
        noisy = scheduler.add_noise(x0, noise, t)
        states = text_encoder(torch.where(drop[:, None], empty, ids[idx]).to(device))[0]
        pred = model(noisy, t.to(device), states)
        loss_feat = F.mse_loss(pred, x0)
        loss_pos = F.mse_loss(motion_joints(raw.denormalize(pred)) * 10, joints[idx].to(device) * 10)
        loss = loss_feat + cfg.position_weight * loss_pos
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(params, 1.0)
        optimizer.step()
        lr_sched.step()
        optimizer.zero_grad(set_to_none=True)
        ema.step(ema_params)
        bar.update(1)
        bar.set_postfix(loss=f"{loss_feat.item():.4f}", pos=f"{loss_pos.item():.4f}")
        if (step + 1) % cfg.checkpointing_steps == 0 or step + 1 == cfg.max_train_steps:
            save_checkpoint(accelerator, out, step + 1, states={"ema": ema})
    bar.close()

    ema.copy_to(ema_params)
    pipe = SignMotionPipeline(
        model=raw.eval(),
        text_encoder=accelerator.unwrap_model(text_encoder).eval(),
        tokenizer=tokenizer,
        scheduler=DPMSolverMultistepScheduler.from_config(scheduler.config),
    )
    final = out / "model"
    if accelerator.is_main_process:
        save_pipeline(pipe, final, cfg.save_dtype, training={"command": "genkit train sign", **asdict(cfg)})
    accelerator.end_training()
    return final
