"""Training loops: a few steps on dummy components, checkpoints, and resumption after a kill."""

import shutil

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
from dummies import DUMMY_VAE
from safetensors.torch import load_file

from genkit.data.shapes import shapes_stream
from genkit.metrics.classifier import ShapesClassifier
from genkit.training.classifier import ClassifierTrainConfig, train_classifier
from genkit.training.latents import vae_roundtrip
from genkit.training.loop import latest_checkpoint
from genkit.training.text2img import Text2ImgTrainConfig, train_text2img
from genkit.training.tokenizer import TokenizerTrainConfig, train_tokenizer
from genkit.training.vae import VAETrainConfig, train_vae
from genkit.utils import GenkitError


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    root = tmp_path_factory.mktemp("parts")
    tok = train_tokenizer(TokenizerTrainConfig(out=str(root / "tokenizer"), num_captions=500, max_length=12))
    vae = train_vae(
        VAETrainConfig(
            out=str(root / "vae"), preset="vae-dummy", max_train_steps=2, batch_size=4, checkpointing_steps=2
        )
    )
    return tok, vae


def _t2i_cfg(parts, out, **kw):
    tok, vae = parts
    return Text2ImgTrainConfig(
        vae=str(vae),
        tokenizer=str(tok),
        out=str(out),
        unet_preset="unet-dummy",
        text_encoder_preset="clip-text-dummy",
        num_train_images=64,
        batch_size=4,
        max_train_steps=4,
        checkpointing_steps=2,
        lr_warmup_steps=1,
        **kw,
    )


def test_vae_trains_and_exports_scaling_factor(parts):
    _, vae_dir = parts
    vae = AutoencoderKL.from_pretrained(vae_dir)
    assert latest_checkpoint(vae_dir.parent)[1] == 2
    x = next(shapes_stream(64, seed=9))["pixel_values"]
    z = vae.encode(x).latent_dist.mode() * vae.config.scaling_factor
    assert vae.config.scaling_factor != 0.18215  # measured, not SD's default
    assert z.std().item() == pytest.approx(1.0, abs=0.25)


def test_vae_roundtrip_decodes_the_posterior_mean_in_chunks_and_keeps_leading_dims():
    torch.manual_seed(0)
    vae = AutoencoderKL(**DUMMY_VAE).eval()
    x = torch.rand(2, 3, 3, 16, 16) * 2 - 1  # e.g. 2 clips of 3 frames
    with torch.no_grad():
        manual = vae.decode(vae.encode(x.flatten(0, 1)).latent_dist.mean).sample.clamp(-1, 1)
    out = vae_roundtrip(vae, x, chunk=4)  # 6 frames: chunks of 4 and 2
    assert out.shape == x.shape and out.dtype == torch.float32
    assert torch.allclose(out.flatten(0, 1), manual, atol=1e-5)
    assert out.abs().max() <= 1 and not torch.allclose(out, x, atol=0.1)  # an untrained VAE loses a lot


def test_text2img_resume_after_kill_matches_uninterrupted(parts, tmp_path):
    straight = train_text2img(_t2i_cfg(parts, tmp_path / "a"))
    # Kill between step 2 and 4: only checkpoint-2 survives and no model was exported.
    train_text2img(_t2i_cfg(parts, tmp_path / "b"))
    shutil.rmtree(tmp_path / "b" / "checkpoints" / "checkpoint-4")
    shutil.rmtree(tmp_path / "b" / "model")
    assert latest_checkpoint(tmp_path / "b")[1] == 2
    resumed = train_text2img(_t2i_cfg(parts, tmp_path / "b"))
    for part in ("unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors"):
        a, b = load_file(straight / part), load_file(resumed / part)
        assert a.keys() == b.keys()
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)
    # training moved the weights away from the seeded initialisation
    torch.manual_seed(0)
    init = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(straight / "unet"))
    trained = UNet2DConditionModel.from_pretrained(straight / "unet")
    diff = max(
        (p - q).abs().max().item() for p, q in zip(init.parameters(), trained.parameters(), strict=True)
    )
    assert diff > 1e-4
    # the export is a Stable Diffusion pipeline that diffusers loads and runs
    pipe = StableDiffusionPipeline.from_pretrained(straight)
    pipe.set_progress_bar_config(disable=True)
    img = pipe("a small red circle at the top left", num_inference_steps=2, output_type="np").images
    assert img.shape == (1, 32, 32, 3) and np.isfinite(img).all()


def test_text2img_fp16_export_loads_as_fp32(parts, tmp_path):
    out = train_text2img(_t2i_cfg(parts, tmp_path, save_dtype="fp16"))
    assert (
        next(iter(load_file(out / "unet/diffusion_pytorch_model.safetensors").values())).dtype
        == torch.float16
    )
    pipe = StableDiffusionPipeline.from_pretrained(out)
    assert {pipe.unet.dtype, pipe.vae.dtype, pipe.text_encoder.dtype} == {torch.float32}


def test_classifier_learns_colour_quickly(tmp_path):
    out = train_classifier(
        ClassifierTrainConfig(out=str(tmp_path), max_train_steps=40, batch_size=32, checkpointing_steps=20)
    )
    model = ShapesClassifier.from_pretrained(out).eval()
    batch = next(shapes_stream(256, seed=77, split="all"))
    pred = model.predict(batch["pixel_values"])
    acc = (pred["color"] == batch["labels"]["color"]).float().mean().item()
    assert acc > 0.5  # chance is 0.2


def test_a_run_folder_that_is_a_file_fails_before_training(tmp_path):
    (tmp_path / "run").write_text("mine")
    with pytest.raises(GenkitError, match="exists and is not a folder"):
        train_classifier(ClassifierTrainConfig(out=str(tmp_path / "run"), max_train_steps=2))
    assert (tmp_path / "run").read_text() == "mine"


def test_bad_training_config_is_rejected(parts, tmp_path):
    with pytest.raises(GenkitError, match="positive"):
        VAETrainConfig(max_train_steps=0)
    with pytest.raises(GenkitError, match="not found"):
        train_text2img(Text2ImgTrainConfig(vae=str(tmp_path / "nope"), out=str(tmp_path)))
    (tmp_path / "empty").mkdir()
    with pytest.raises(GenkitError, match="could not load the VAE from"):
        empty = str(tmp_path / "empty")
        train_text2img(Text2ImgTrainConfig(vae=empty, tokenizer=empty, out=str(tmp_path / "run")))


class _Marker:
    """Unpickling this creates a file: the proof that a pickle ran code."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _ema_run(tmp_path):
    from accelerate import Accelerator
    from diffusers.training_utils import EMAModel

    net = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    accelerator = Accelerator()
    net, opt = accelerator.prepare(net, opt)
    ema = EMAModel(net.parameters(), decay=0.9, use_ema_warmup=True, power=2 / 3)
    return accelerator, net, ema


def test_extra_states_are_safetensors_and_resume_exactly(tmp_path):
    from genkit.training.loop import resume, save_checkpoint

    accelerator, net, ema = _ema_run(tmp_path)
    for _ in range(3):
        with torch.no_grad():
            net.weight.add_(1.0)
        ema.step(net.parameters())
    ckpt = save_checkpoint(accelerator, tmp_path, 3, states={"ema": ema})
    assert (ckpt / "ema.safetensors").is_file()
    assert not list(ckpt.glob("*custom*"))  # nothing of accelerate's pickled custom states
    saved = {k: v for k, v in ema.state_dict().items() if k != "shadow_params"}
    shadow = [p.clone() for p in ema.shadow_params]

    accelerator2, _, ema2 = _ema_run(tmp_path)  # a fresh run in the same folder
    assert ema2.optimization_step == 0
    assert resume(accelerator2, tmp_path, states={"ema": ema2}) == 3
    assert {k: v for k, v in ema2.state_dict().items() if k != "shadow_params"} == saved
    assert type(ema2.optimization_step) is int and type(ema2.use_ema_warmup) is bool
    for a, b in zip(shadow, ema2.shadow_params, strict=True):
        assert torch.equal(a, b) and not torch.equal(b, torch.zeros_like(b))


def test_resume_refuses_a_pickled_state(tmp_path):
    """A checkpoint that keeps a state as a pickle (an EMA in accelerate's custom_checkpoint_0.pkl, which accelerate
    unpickles in full) is refused with a clear error, and nothing in it runs."""
    from genkit.training.loop import resume, save_checkpoint

    accelerator, _, ema = _ema_run(tmp_path)
    ckpt = save_checkpoint(accelerator, tmp_path, 2)
    marker = tmp_path / "pwned"
    torch.save({**ema.state_dict(), "decay": _Marker(marker)}, ckpt / "custom_checkpoint_0.pkl")
    accelerator2, _, ema2 = _ema_run(tmp_path)
    with pytest.raises(GenkitError, match="keeps state as a pickle"):
        resume(accelerator2, tmp_path, states={"ema": ema2})
    assert not marker.exists() and (ckpt / "custom_checkpoint_0.pkl").is_file()
    # a checkpoint missing a state the run expects is a clear error too
    (ckpt / "custom_checkpoint_0.pkl").unlink()
    with pytest.raises(GenkitError, match="could not be loaded"):
        resume(accelerator2, tmp_path, states={"ema": ema2})
