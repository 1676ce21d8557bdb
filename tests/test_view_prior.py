"""The view-conditioned prior of text-to-3D: genkit train vae --data objects3d, genkit train view-prior,
ViewConditionedPipeline (with and without a camera) and score distillation on it (tiny models)."""

import pytest
import torch

from genkit.distill.score_distillation import SDS, PipelinePrior
from genkit.models.camera import CameraEncoder, camera_features
from genkit.pipelines.view_prior import ViewConditionedPipeline
from genkit.training.vae import VAETrainConfig, train_vae
from genkit.training.view_prior import ViewPriorTrainConfig, train_view_prior
from genkit.utils import GenkitError


@pytest.fixture(scope="module")
def prior_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("view")
    vae = train_vae(
        VAETrainConfig(
            out=str(root / "vae"),
            preset="vae-dummy",
            data="objects3d",
            pool_size=48,
            max_train_steps=2,
            batch_size=4,
            checkpointing_steps=2,
        )
    )
    cfg = ViewPriorTrainConfig(
        vae=str(vae),
        out=str(root / "prior"),
        unet_preset="unet-dummy",
        text_encoder_preset="clip-text-dummy",
        num_train_images=48,
        batch_size=4,
        max_train_steps=3,
        checkpointing_steps=3,
        lr_warmup_steps=1,
    )
    return train_view_prior(cfg)


def test_camera_features_wrap_around():
    f = camera_features(torch.tensor([[0.0, 10.0], [360.0, 10.0], [90.0, 10.0]]), 2)
    torch.testing.assert_close(f[0], f[1], atol=1e-5, rtol=0)
    assert (f[0] - f[2]).abs().max() > 0.5
    enc = CameraEncoder(hidden_size=8, num_tokens=3)
    assert enc(torch.zeros(5, 2)).shape == (5, 3, 8)


def test_view_prior_trains_and_runs_with_and_without_camera(prior_dir):
    pipe = ViewConditionedPipeline.from_pretrained(str(prior_dir))
    assert pipe.camera_encoder is not None
    pipe.set_progress_bar_config(disable=True)
    kw = dict(num_inference_steps=2, output_type="np", guidance_scale=3.0)
    a = pipe("front view of a red cube", camera=(0.0, 10.0), generator=torch.Generator().manual_seed(0), **kw)
    b = pipe(
        "front view of a red cube", camera=(180.0, 10.0), generator=torch.Generator().manual_seed(0), **kw
    )
    c = pipe("front view of a red cube", generator=torch.Generator().manual_seed(0), **kw)
    assert a.images.shape == (1, 32, 32, 3) and (a.images != b.images).any()  # the camera matters
    assert (a.images != c.images).any() and pytest.approx(c.images.mean(), abs=0.5) == 0.5
    # a dropped camera in training is masked out of cross-attention: the same as no camera tokens
    unet, te = pipe.unet, pipe.text_encoder
    from genkit.models.text import tokenize

    text = te(tokenize(pipe.tokenizer, ["a red cube"]))[0]
    cam = pipe.camera_encoder(torch.tensor([[30.0, 5.0]]))
    x, t = torch.randn(1, 4, 8, 8), torch.tensor([500])
    masked = unet(
        x,
        t,
        torch.cat([text, cam], 1),
        encoder_attention_mask=torch.tensor([[1.0] * text.shape[1] + [0.0] * cam.shape[1]]),
    ).sample
    torch.testing.assert_close(masked, unet(x, t, text).sample, atol=1e-5, rtol=1e-4)


def test_score_distillation_takes_the_view_prior(prior_dir):
    prior = PipelinePrior(str(prior_dir))
    x = torch.nn.Parameter(torch.zeros(2, *prior.latent_shape))
    prompts = ["front view of a red cube", "back view of a red cube"]
    eps = prior.eps(7.5)
    sds = SDS(eps, prior.alphas_cumprod)
    sds.loss(
        x, 0, torch.Generator().manual_seed(0), prompts=prompts, camera=[[0.0, 10.0], [180.0, 10.0]]
    ).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    # the camera reaches the denoiser through its tokens
    x_t, t = torch.randn(2, *prior.latent_shape), torch.tensor([300, 300])
    a = eps(x_t, t, prompts, camera=[[0.0, 10.0], [0.0, 10.0]])
    b = eps(x_t, t, prompts, camera=[[90.0, 10.0], [90.0, 10.0]])
    assert (a - b).abs().max() > 1e-5 and (a - eps(x_t, t, prompts)).abs().max() > 1e-5


def test_view_prior_refuses_a_missing_vae(tmp_path):
    with pytest.raises(GenkitError, match="not found"):
        train_view_prior(ViewPriorTrainConfig(vae=str(tmp_path / "none"), out=str(tmp_path / "o")))
    with pytest.raises(GenkitError):
        ViewPriorTrainConfig(camera_dropout=1.0)
