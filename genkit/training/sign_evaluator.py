"""``genkit train sign-evaluator``: the motion and text encoders and the sign classifier of the sign metrics.

Trained from scratch on jittered procedural sentences of every split (a measuring instrument, not a
generator): a contrastive (InfoNCE) loss aligns motion and sentence embeddings, a cross-entropy loss
teaches the classifier to read each sign's window. Inputs get small noise so that the evaluator judges
what is signed rather than how smooth it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from genkit.metrics.sign import SignEvaluator, evaluator_inputs, gloss_ids
from genkit.training.loop import (
    TrainStep,
    device_field,
    make_accelerator,
    progress,
    resume,
    save_checkpoint,
    save_dtype_field,
    save_model,
)
from genkit.training.sign import motion_pool
from genkit.utils import GenkitError


@dataclass
class SignEvaluatorTrainConfig:
    out: str = field(default="runs/sign-evaluator", metadata={"help": "run folder: checkpoints/ and model/"})
    max_train_steps: int = field(default=1500, metadata={"help": "optimizer steps"})
    batch_size: int = field(default=128, metadata={"help": "sentences per step"})
    num_train_motions: int = field(default=6000, metadata={"help": "procedural sentences generated once"})
    learning_rate: float = field(default=1e-3, metadata={"help": "AdamW learning rate (one-cycle)"})
    temperature: float = field(default=0.1, metadata={"help": "InfoNCE temperature"})
    noise: float = field(default=0.01, metadata={"help": "std of the noise added to the inputs (metres)"})
    seed: int = field(default=0, metadata={"help": "seed of data, noise and initialisation"})
    checkpointing_steps: int = field(
        default=500, metadata={"help": "save a resumable checkpoint every N steps"}
    )
    save_dtype: str = save_dtype_field()
    device: str = device_field()

    def __post_init__(self):
        if min(self.max_train_steps, self.batch_size, self.checkpointing_steps, self.num_train_motions) <= 0:
            raise GenkitError(
                "max-train-steps, batch-size, checkpointing-steps and num-train-motions must be positive"
            )
        if self.temperature <= 0 or self.noise < 0:
            raise GenkitError("temperature must be positive and noise non-negative")


def train_sign_evaluator(cfg: SignEvaluatorTrainConfig) -> Path:
    out = Path(cfg.out)
    accelerator = make_accelerator(out, cfg.seed, device=cfg.device)
    device = accelerator.device
    motions, captions = motion_pool(cfg.num_train_motions, cfg.seed * 1000 + 99, split="all")
    inputs, glosses = evaluator_inputs(motions), gloss_ids(captions)

    torch.manual_seed(cfg.seed)
    model = SignEvaluator(input_dim=inputs.shape[-1])
    model.input_mean.copy_(inputs.mean((0, 1)))
    model.input_std.copy_(inputs.std((0, 1)).clamp_min(1e-2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=1e-4)
    lr_sched = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.learning_rate, total_steps=cfg.max_train_steps
    )
    step_fn, optimizer, lr_sched = accelerator.prepare(TrainStep(model), optimizer, lr_sched)
    start = resume(accelerator, out)

    def losses(m: SignEvaluator, x: torch.Tensor, words: torch.Tensor):
        logits = m.embed_motion(x) @ m.embed_text(words).T / cfg.temperature
        same = (words[:, None] == words[None]).all(-1).float()  # repeated sentences are positives too
        target = same / same.sum(1, keepdim=True)
        contrastive = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target.T))
        return contrastive, F.cross_entropy(m.classify_signs(x).flatten(0, 1), words.flatten())

    bar = progress(accelerator, cfg.max_train_steps, start, "train sign-evaluator")
    for step in range(start, cfg.max_train_steps):
        g = torch.Generator().manual_seed((cfg.seed * 1000 + accelerator.process_index) * 1_000_003 + step)
        idx = torch.randint(len(inputs), (cfg.batch_size,), generator=g)
        x = inputs[idx] + cfg.noise * torch.randn(inputs[idx].shape, generator=g)
        x, words = x.to(device), glosses[idx].to(device)
        # through TrainStep: DistributedDataParallel averages the gradients of every method called
        contrastive, signs = step_fn(losses, x, words)
        loss = contrastive + signs
        accelerator.backward(loss)
        optimizer.step()
        lr_sched.step()
        optimizer.zero_grad(set_to_none=True)
        bar.update(1)
        bar.set_postfix(nce=f"{contrastive.item():.3f}", signs=f"{signs.item():.3f}")
        if (step + 1) % cfg.checkpointing_steps == 0 or step + 1 == cfg.max_train_steps:
            save_checkpoint(accelerator, out, step + 1)
    bar.close()

    return save_model(accelerator, accelerator.unwrap_model(step_fn).model, out, cfg.save_dtype)
