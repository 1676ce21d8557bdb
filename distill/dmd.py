"""``genkit distill --method dmd``: Distribution Matching Distillation (DMD2, Yin et al. 2024).

The student ``G`` starts as a copy of the teacher's denoiser and maps noise at the student's timesteps to
a clean sample. The fake score is a second full copy of the teacher, updated ``fake_updates`` (5) times
per student update (DMD2's two time-scale rule). The student's gradient is the difference of the fake and
the real (teacher, with guidance) clean-sample predictions at a noised student sample, normalised per
sample (``losses.dmd_loss``). Optional: DMD2's GAN (a small head on the fake score's bottleneck features,
real data from genkit's procedural images), SNOOPI's random guidance scale, an MSE regression to teacher
samples from the same noise, backward simulation for 2-4-step students. The loop is ``distill/loop.py``'s.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from genkit.distill.config import DistillConfig
from genkit.distill.loop import Distillation, distill, step_rng, student_sample
from genkit.distill.losses import dmd_loss, gan_discriminator_loss, gan_generator_loss, regression_loss
from genkit.distill.teacher import Teacher
from genkit.utils import GenkitError

__all__ = ["DMD", "BottleneckDiscriminator", "train_dmd"]

GAN_REAL_IMAGES = 4000  # procedural images whose latents are the GAN's real data


class BottleneckDiscriminator(nn.Module):
    """DMD2's GAN head: conv 4x4 stride 2, GroupNorm, SiLU, conv 1x1 to one logit per position (averaged)
    on the fake UNet's mid-block output, captured with a forward hook."""

    def __init__(self, channels: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, channels, 4, stride=2, padding=1),
            nn.GroupNorm(min(32, channels), channels),
            nn.SiLU(),
            nn.Conv2d(channels, 1, 1),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features.float()).mean(dim=(1, 2, 3))


class DMD:
    """What DMD2 adds to the shared loop: the distribution-matching student loss, the optional GAN (its
    discriminator trains with the fake score) and the optional regression to teacher samples."""

    name, fake_score, fake_updates = "dmd", "copy", 5

    def __init__(self, cfg: DistillConfig):
        self.cfg = cfg
        self.disc, self.feats, self.real_latents, self.regression = None, {}, None, None

    def setup(self, run: Distillation) -> list[torch.nn.Parameter]:
        cfg, fake = self.cfg, run.fake
        if cfg.gan_weight > 0:
            if not hasattr(fake, "mid_block"):
                raise GenkitError("the GAN head needs a UNet teacher (a mid block to read features from)")
            fake.mid_block.register_forward_hook(lambda m, i, o: self.feats.__setitem__("mid", o))
            self.disc = BottleneckDiscriminator(fake.config.block_out_channels[-1]).to(run.accelerator.device)
            from genkit.training.latents import LatentCache

            self.real_latents = LatentCache(run.teacher.pipe.vae, GAN_REAL_IMAGES, cfg.seed)
        if cfg.regression_weight > 0:
            self.regression = teacher_pairs(run.teacher, run.prompts, cfg, run.timesteps)
        return list(self.disc.parameters()) if self.disc else []

    def prepare(self, accelerator) -> None:
        if self.disc is not None:
            self.disc = accelerator.prepare(self.disc)

    def fake_conditioning(self, run: Distillation, states: torch.Tensor) -> torch.Tensor:
        return states

    def fake_extra_loss(self, run: Distillation, step: int, k: int, t: torch.Tensor):
        """The GAN discriminator's loss: the fake score's bottleneck on the student's sample (the forward the
        loop just ran) against real procedural latents noised to the same timesteps."""
        if self.disc is None:
            return None
        cfg, teacher, device = self.cfg, run.teacher, run.accelerator.device
        logits_fake = self.disc(self.feats["mid"])
        real, idx, _ = self.real_latents.batch(
            cfg.seed, run.accelerator.process_index, step * 64 + k, cfg.batch_size, 0.0
        )
        real = real.to(device)
        real_states = teacher.encode([self.real_latents.captions[i] for i in idx])
        run.fake(teacher.add_noise(real, torch.randn_like(real), t), t, real_states)
        return cfg.gan_disc_weight * gan_discriminator_loss(self.disc(self.feats["mid"]), logits_fake)

    def student_loss(self, run: Distillation, x, x_t, t, t_gan, states, guidance, depth: int, step: int):
        cfg, teacher = self.cfg, run.teacher
        with torch.no_grad():
            with run.real_score():
                x0_real = teacher.guided(
                    teacher.x0, teacher.denoiser, x_t, t, states, run.null_states, guidance
                )
            x0_fake = teacher.x0(run.fake, x_t, t, states)
        loss_dm = dmd_loss(x, x0_real, x0_fake)
        loss = loss_dm
        if self.disc is not None:
            run.fake(
                teacher.add_noise(x, torch.randn_like(x), t_gan), t_gan, states
            )  # graph to x, not stepped
            loss = loss + cfg.gan_weight * gan_generator_loss(self.disc(self.feats["mid"]))
        if self.regression is not None and depth == 0:
            noise, target, idx = self.regression(step)
            x_reg = student_sample(
                teacher, run.student, teacher.encode([run.prompts[i] for i in idx]), run.timesteps, 0, noise
            )[0]
            loss = loss + cfg.regression_weight * regression_loss(x_reg, target)
        return loss, {"dm": f"{loss_dm.item():.2e}"}


def train_dmd(cfg: DistillConfig) -> Path:
    """``genkit distill --method dmd``: the student pipeline's folder."""
    return distill(cfg, DMD(cfg))


def teacher_pairs(teacher: Teacher, prompts: list[str], cfg: DistillConfig, timesteps: list[int]):
    """A fixed set of (noise, teacher latent) pairs from the teacher's own pipeline (``regression_steps``
    steps, guidance ``cfg.guidance``), made once; returns ``draw(step) -> (noise, target, prompt idx)``."""
    if timesteps[0] != teacher.num_train_timesteps - 1:
        raise GenkitError("the regression loss needs a student that starts at the last timestep")
    n = 8 * cfg.batch_size
    g = torch.Generator().manual_seed(cfg.seed + 1)
    idx = torch.randint(0, len(prompts), (n,), generator=g)
    noise = torch.randn((n, *teacher.latent_shape), generator=g)
    targets = []
    for i in range(0, n, cfg.batch_size):
        with torch.no_grad():
            targets.append(
                teacher.pipe(
                    [prompts[j] for j in idx[i : i + cfg.batch_size]],
                    num_inference_steps=cfg.regression_steps,
                    guidance_scale=cfg.guidance,
                    latents=noise[i : i + cfg.batch_size].to(teacher.pipe.device),
                    output_type="latent",
                ).images
            )
    target = torch.cat(targets)

    def draw_pairs(step: int):
        sel = torch.as_tensor(step_rng(cfg.seed, step, 99).integers(0, n, cfg.batch_size))
        dev = target.device
        return noise[sel].to(dev), target[sel], idx[sel].tolist()

    return draw_pairs
