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


def test_view_prior_captions_leave_a_seeded_share_of_colours_open(prior_dir):
    from diffusers import AutoencoderKL

    from genkit.data.objects3d import render_pool
    from genkit.training.view_prior import ViewLatentCache, caption_vocabulary

    vae = AutoencoderKL.from_pretrained(str(prior_dir / "vae"))
    named = render_pool(40, vae.config.sample_size, seed=3, progress=False)["captions"]
    a = ViewLatentCache(vae, 40, seed=3, open_color=0.5)
    assert a.captions == ViewLatentCache(vae, 40, seed=3, open_color=0.5).captions
    assert ViewLatentCache(vae, 40, seed=3).captions == named
    opened = [i for i, (c, n) in enumerate(zip(a.captions, named, strict=True)) if c != n]
    assert 10 <= len(opened) <= 30
    for i in opened:  # "side view of a red cube" -> "side view of a cube"
        view, _, _, _, color, shape = named[i].split()
        assert a.captions[i] == f"{view} view of a {shape}"
    assert set(a.captions) <= set(caption_vocabulary())


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


# --- genkit text-to-3d on the tiny prior -----------------------------------------------------------------
def _t3d(prior_dir, out, **kw):
    from genkit.pipelines.text_to_3d import TextTo3DConfig

    base = dict(
        prompt="a red cube",
        prior=str(prior_dir),
        out=str(out),
        max_train_steps=2,
        batch_views=2,
        samples=8,
        mesh_resolution=16,
        video_frames=2,
        video_resolution=16,
        checkpointing_steps=1,
    )
    return TextTo3DConfig(**{**base, **kw})


@pytest.mark.parametrize("method", ["sds", "vsd"])
def test_text_to_3d_writes_mesh_video_and_resumes(prior_dir, tmp_path, method):
    import trimesh

    from genkit.pipelines.text_to_3d import text_to_3d
    from genkit.training.loop import latest_checkpoint

    out = text_to_3d(_t3d(prior_dir, tmp_path / "a", method=method))
    for name in (
        "mesh.obj",
        "mesh.glb",
        "turntable.mp4",
        "turntable.gif",
        "field.safetensors",
        "metadata.json",
    ):
        assert (out / name).stat().st_size > 0, name
    mesh = trimesh.load(out / "mesh.obj", force="mesh")
    assert len(mesh.faces) > 0 and mesh.bounds[1].max() < 1.01
    assert latest_checkpoint(out)[1] == 2
    # run again with more steps: it resumes from step 2, and an interrupted run equals an uninterrupted one
    text_to_3d(_t3d(prior_dir, out, method=method, max_train_steps=3))
    assert latest_checkpoint(out)[1] == 3
    whole = text_to_3d(_t3d(prior_dir, tmp_path / "b", method=method, max_train_steps=3))
    from genkit.pipelines.text_to_3d import load_object_field, render_field

    # Adam (eps 1e-15) turns float noise in near-zero hash-table gradients into +-lr steps on a few
    # entries, so the runs are compared on what they render
    views = []
    for folder in (out, whole):
        f = load_object_field(folder)
        views.append(render_field(f, torch.tensor([[0.0, 10.0], [120.0, 40.0]]), 16, samples=16)[0])
    torch.testing.assert_close(views[0], views[1], atol=2e-3, rtol=0)


def test_text_to_3d_particles_share_a_run_and_are_written_apart(prior_dir, tmp_path, capsys):
    import json

    from genkit.cli import main
    from genkit.pipelines.text_to_3d import load_object_field, render_field
    from genkit.training.loop import latest_checkpoint

    out = tmp_path / "p"
    args = ["text-to-3d", "a cube", "--method", "vsd", "--particles", "2", "--prior", str(prior_dir)]
    small = ["--max-train-steps", "2", "--batch-views", "1", "--samples", "8", "--mesh-resolution", "16"]
    assert main([*args, *small, "--video-frames", "2", "--video-resolution", "16", "--out", str(out)]) == 0
    assert f"to {out}/particle-0 ... particle-1" in capsys.readouterr().out
    assert latest_checkpoint(out)[1] == 2 and not (out / "field.safetensors").exists()
    views = []
    for k in range(2):
        assert json.loads((out / f"particle-{k}" / "metadata.json").read_text())["particle"] == k
        assert (out / f"particle-{k}" / "mesh.glb").stat().st_size > 0
        f = load_object_field(out / f"particle-{k}")
        with torch.no_grad():
            views.append(render_field(f, torch.tensor([[0.0, 10.0]]), 16, samples=16)[0])
    assert (views[0] - views[1]).abs().max() > 1e-3  # initialised apart
    assert main([*args, "--particles", "0", "--out", str(tmp_path / "q")]) != 0


def test_text_to_3d_field_renders_its_blob_and_refuses_bad_input(prior_dir, tmp_path):
    from genkit.pipelines.text_to_3d import ObjectField, render_field, text_to_3d

    torch.manual_seed(0)
    with torch.no_grad():
        img, acc = render_field(ObjectField(), torch.tensor([[0.0, 0.0], [90.0, 30.0]]), 16, samples=32)
    assert img.shape == (2, 3, 16, 16) and acc.shape == (2, 1, 16, 16)
    assert (
        float(acc[0, 0, 8, 8]) > 0.99 and float(acc[0, 0, 0, 0]) < 0.01
    )  # the blob is a ball of radius ~0.5
    with pytest.raises(GenkitError, match="does not know"):
        text_to_3d(_t3d(prior_dir, tmp_path / "c", prompt="a shiny teapot"))
    with pytest.raises(GenkitError, match="prompt"):
        _t3d(prior_dir, tmp_path / "d", prompt=" ")
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").glob("mesh.*"))


def test_bundled_view_prior_draws_the_side_the_camera_asks_for():
    """The shipped prior (genkit/assets/view-prior-objects) read by the shipped 3-D classifier: the object
    of the prompt, with the front marker from the front and not from behind; and, when the prompt leaves the
    colour open, cubes of more than one colour."""
    from genkit.loading import load_pipeline
    from genkit.metrics.objects3d import load_objects3d_classifier

    pipe = load_pipeline("view-prior-objects", "dpm")
    clf = load_objects3d_classifier()

    def read(prompts, cameras):
        images = pipe(
            prompts,
            camera=cameras,
            num_inference_steps=10,
            guidance_scale=4.0,
            generator=torch.Generator().manual_seed(0),
            output_type="pt",
        ).images
        return clf.predict(images * 2 - 1)

    pred = read(
        ["front view of a blue sphere", "back view of a blue sphere"] * 2, [(0.0, 10.0), (180.0, 10.0)] * 2
    )
    assert pred["shape"].tolist() == [0] * 4 and pred["color"].tolist() == [2] * 4  # sphere, blue
    assert pred["marker"].tolist() == [1, 0, 1, 0]
    # a prompt that leaves the colour open has a distribution of colours (what VSD's particles sample)
    pred = read(["side view of a cube"] * 8, [(90.0, 10.0)] * 8)
    assert pred["shape"].tolist() == [1] * 8 and len(set(pred["color"].tolist())) >= 2  # cubes
