"""Run one genkit trainer (classifier, vae, tiny_decoder, nerf, avatar, fpdm, dmd, vsd) for a few steps
under ``torchrun --nproc_per_node 2`` (gloo on the CPU) and write each rank's sum of every prepared
model's parameters at every checkpoint to OUT/sums-RANK.json, so that a test can check that data-parallel
training keeps the replicas identical (every gradient went through DistributedDataParallel). Usage:
ACCELERATE_USE_CPU=true torchrun --standalone --nproc_per_node 2 tests/ddp_spy.py TRAINER OUT [DATA]
(DATA: the nerf scene, the head dataset, or the base/teacher pipeline folder)."""

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


torch.set_num_threads(1)
if trainer == "vae":
    import genkit.training.vae as m

    m.save_checkpoint = spy(loop.save_checkpoint)
    m.train_vae(
        m.VAETrainConfig(
            out=str(out), preset="vae-dummy", max_train_steps=2, batch_size=2, checkpointing_steps=1
        )
    )
elif trainer == "classifier":
    import genkit.training.classifier as m

    m.save_checkpoint = spy(loop.save_checkpoint)
    m.train_classifier(
        m.ClassifierTrainConfig(out=str(out), max_train_steps=2, batch_size=4, checkpointing_steps=1)
    )
elif trainer == "tiny_decoder":
    import genkit.training.tiny_decoder as m

    m.save_checkpoint = spy(loop.save_checkpoint)
    m.train_tiny_decoder(
        m.TinyDecoderTrainConfig(
            out=str(out),
            channels=8,
            max_train_steps=2,
            batch_size=2,
            num_train_images=8,
            checkpointing_steps=1,
        )
    )
elif trainer == "nerf":
    import genkit.render.trainer as m

    m.save_checkpoint = spy(loop.save_checkpoint)
    m.train_nerf(
        m.NerfTrainConfig(
            data=data,
            out=str(out),
            max_steps=2,
            rays_per_batch=64,
            levels=2,
            max_resolution=32,
            grid_resolution=16,
            checkpointing_steps=1,
            eval_views=0,
        )
    )
elif trainer == "avatar":
    import genkit.render.avatar_trainer as m

    m.save_checkpoint = spy(loop.save_checkpoint)
    m.train_avatar(
        m.AvatarTrainConfig(
            data=data,
            out=str(out),
            max_train_steps=2,
            rays_per_step=64,
            frames_per_step=1,
            eval_frames=0,
            checkpointing_steps=1,
        )
    )
elif trainer == "fpdm":
    import genkit.training.fpdm as m

    m.save_checkpoint = spy(loop.save_checkpoint)
    small = dict(
        hidden_size=32, num_attention_heads=2, depth=3, sample_iterations=2, no_grad_max=2, grad_max=2
    )
    m.train_fpdm(
        m.FPDMTrainConfig(
            base=data,
            out=str(out),
            max_train_steps=2,
            batch_size=4,
            num_train_images=32,
            checkpointing_steps=1,
            lr_warmup_steps=1,
            **small,
        )
    )
elif trainer in ("dmd", "vsd"):
    import genkit.distill.dmd as dmd
    import genkit.distill.vsd as vsd
    from genkit.distill.teacher import DistillConfig

    m = dmd if trainer == "dmd" else vsd
    m.save_checkpoint = spy(loop.save_checkpoint)
    cfg = DistillConfig(teacher=data, out=str(out), max_train_steps=2, batch_size=2, checkpointing_steps=1)
    (m.train_dmd if trainer == "dmd" else m.train_vsd)(cfg)
else:
    raise SystemExit(f"unknown trainer {trainer}")
