"""Run one genkit trainer (classifier, vae, tiny_decoder, nerf, avatar, fpdm, text2img, objects3d_classifier,
sign, sign_evaluator, dmd, vsd) for a
few steps under ``torchrun --nproc_per_node 2`` (gloo on the CPU) and write each rank's sum of every
prepared model's parameters at every checkpoint to OUT/sums-RANK.json, so that a test can check that
data-parallel training keeps the replicas identical (every gradient went through DistributedDataParallel).
Usage: ACCELERATE_USE_CPU=true torchrun --standalone --nproc_per_node 2 tests/ddp_spy.py TRAINER OUT [DATA]
(DATA: the nerf scene, the head dataset, or the pipeline folder of FPDM's base, text2img's VAE and
tokenizer, the distillation teacher)."""

import importlib
import json
import sys
from pathlib import Path

import torch

import genkit.training.loop as loop

trainer, out = sys.argv[1], Path(sys.argv[2])
data = sys.argv[3] if len(sys.argv) > 3 else ""
sums: list[list[float]] = []


def spy(save):
    def save_checkpoint(accelerator, out_dir, step, *args, **kwargs):
        models = [accelerator.unwrap_model(m) for m in accelerator._models]
        sums.append([float(sum(p.detach().double().sum() for p in m.parameters())) for m in models])
        path = Path(out_dir) / f"sums-{accelerator.process_index}.json"
        path.write_text(json.dumps(sums))
        return save(accelerator, out_dir, step, *args, **kwargs)

    return save_checkpoint


# trainer -> (module, its training function, its config class, the config's tiny settings); every run
# takes two steps and checkpoints after each
TRAINERS = {
    "vae": ("genkit.training.vae", "train_vae", "VAETrainConfig", dict(preset="vae-dummy", batch_size=2)),
    "classifier": (
        "genkit.training.classifier",
        "train_classifier",
        "ClassifierTrainConfig",
        dict(batch_size=4),
    ),
    "tiny_decoder": (
        "genkit.training.tiny_decoder",
        "train_tiny_decoder",
        "TinyDecoderTrainConfig",
        dict(channels=8, batch_size=2, num_train_images=8, generated=2),
    ),
    "nerf": (
        "genkit.render.nerf.trainer",
        "train_nerf",
        "NerfTrainConfig",
        dict(
            data=data,
            rays_per_step=64,
            levels=2,
            max_resolution=32,
            grid_resolution=16,
            eval_views=0,
        ),
    ),
    "avatar": (
        "genkit.render.avatar.trainer",
        "train_avatar",
        "AvatarTrainConfig",
        dict(data=data, rays_per_step=64, frames_per_step=1, eval_frames=0),
    ),
    "fpdm": (
        "genkit.training.fpdm",
        "train_fpdm",
        "FPDMTrainConfig",
        dict(
            base=data,
            batch_size=4,
            num_train_images=32,
            lr_warmup_steps=1,
            hidden_size=32,
            num_attention_heads=2,
            depth=3,
            sample_iterations=2,
            no_grad_max=2,
            grad_max=2,
        ),
    ),
    "text2img": (
        "genkit.training.text2img",
        "train_text2img",
        "Text2ImgTrainConfig",
        dict(
            vae=f"{data}/vae",
            tokenizer=f"{data}/tokenizer",
            unet_preset="unet-dummy",
            text_encoder_preset="clip-text-dummy",
            num_train_images=16,
            batch_size=2,
            lr_warmup_steps=1,
        ),
    ),
    "objects3d_classifier": (
        "genkit.training.objects3d_classifier",
        "train_objects3d_classifier",
        "Objects3DClassifierTrainConfig",
        dict(batch_size=4, pool_size=8, resolution=16),
    ),
    "sign": (
        "genkit.training.sign",
        "train_sign",
        "SignTrainConfig",
        dict(batch_size=4, num_train_motions=8, hidden=32, layers=1, lr_warmup_steps=1),
    ),
    "sign_evaluator": (
        "genkit.training.sign_evaluator",
        "train_sign_evaluator",
        "SignEvaluatorTrainConfig",
        dict(batch_size=4, num_train_motions=8),
    ),
    "dmd": ("genkit.distill.dmd", "train_dmd", "DistillConfig", dict(teacher=data, batch_size=2)),
    "vsd": ("genkit.distill.vsd", "train_vsd", "DistillConfig", dict(teacher=data, batch_size=2)),
}

torch.set_num_threads(1)
name, train, config, settings = TRAINERS[trainer]
module = importlib.import_module(name)
# the module whose loop saves the checkpoints: the trainer's own, or distillation's shared loop
saver = importlib.import_module("genkit.distill.loop") if trainer in ("dmd", "vsd") else module
saver.save_checkpoint = spy(loop.save_checkpoint)
getattr(module, train)(
    getattr(module, config)(out=str(out), checkpointing_steps=1, max_train_steps=2, **settings)
)
