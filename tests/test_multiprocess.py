"""Data-parallel training: every trainer (those whose step calls more than a model's forward: encode/decode,
a field's density, an avatar's prepare/render; and those that call forwards only) under ``torchrun`` with
two processes on the CPU (gloo; ``accelerate launch`` starts the same on several GPUs). The replicas must stay identical at every checkpoint
(every gradient averaged by DistributedDataParallel through ``genkit.training.loop.TrainStep``) and keep
learning to the last step (schedules count optimizer steps, not optimizer steps times processes)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dummies import dummy_pipeline
from test_render_datasets import write_scene

from genkit.assets import bundled_models
from genkit.render.avatar import make_head_dataset

SPY = Path(__file__).parent / "ddp_spy.py"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    dummy_pipeline().save_pretrained(root / "pipe", safe_serialization=True)  # FPDM's base, the teacher
    return {
        "nerf": str(write_scene(root / "scene", n=2, size=(8, 6))),
        "avatar": str(make_head_dataset(root / "head", size=24, frames=4)),
        **dict.fromkeys(("fpdm", "dmd", "vsd"), str(root / "pipe")),
        "text2img": bundled_models()["text2img-shapes"]["path"],  # its VAE and tokenizer
    }


@pytest.mark.parametrize(
    "trainer",
    [
        "classifier",
        "vae",
        "tiny_decoder",
        "nerf",
        "avatar",
        "fpdm",
        "text2img",
        "objects3d_classifier",
        "sign",
        "sign_evaluator",
        "dmd",
        "vsd",
    ],
)
def test_two_processes_keep_the_replicas_identical(trainer, data, tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(SPY)]
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [*cmd, trainer, str(run), data.get(trainer, "")], env=env, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr[-3000:]
    sums = [json.loads((run / f"sums-{rank}.json").read_text()) for rank in (0, 1)]
    assert len(sums[0]) == 2 and sums[0] == sums[1]  # two checkpoints, the same parameters on both ranks
    assert sums[0][0] != sums[0][1]  # the second step still changed them
