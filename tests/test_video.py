"""Text-to-video: moving-shapes data, motion modules on an image UNet, training, AnimateDiff loading, the
``genkit video`` command and the video metrics."""

import json
from dataclasses import replace

import imageio.v2 as imageio
import imageio.v3 as iio
import numpy as np
import pytest
import torch
from diffusers import AnimateDiffPipeline, UNet2DConditionModel, UNetMotionModel
from dummies import dummy_pipeline

from genkit.cli import main
from genkit.data.video import (
    HELDOUT_TRIPLES,
    MOTIONS,
    VideoAttributes,
    VideoDataset,
    parse_video_caption,
    prompt_path,
    time_reversed,
    video_combinations,
)
from genkit.metrics.video import (
    VideoClassifier,
    classify_motion,
    flicker,
    frame_accuracy,
    load_video_classifier,
    track,
)
from genkit.models.presets import UNET_PRESETS
from genkit.models.video import (
    IMAGE_LORA_TARGETS,
    NewRowsOnly,
    add_image_lora,
    add_words,
    image_unet_of,
    motion_adapter_of,
    video_unet,
    zero_motion_outputs,
)
from genkit.pipelines.video import generate_clips, load_video, path_discs, video_noise
from genkit.training.video import (
    VideoTrainConfig,
    frame_difference_loss,
    outside_paths,
    reversed_pairs,
    train_video,
)


def test_video_splits_and_captions():
    train, held = video_combinations("train"), video_combinations("heldout")
    assert len(train) == 180 and len(held) == 20
    assert {(a.color, a.shape, a.motion) for a in held} == set(HELDOUT_TRIPLES)
    assert not {(a.color, a.shape, a.motion) for a in train} & set(HELDOUT_TRIPLES)
    assert {a.motion for a in train} == set(MOTIONS)
    for a in train[::17] + held:
        assert parse_video_caption(a.caption().upper() + ".") == a
    with pytest.raises(ValueError):
        parse_video_caption("a small red circle rotating")


def test_clips_move_as_captioned_and_are_seeded():
    data = VideoDataset(120, frames=8, seed=3, split="all")
    batch = data.batch(range(120))
    assert batch["pixel_values"].shape == (120, 8, 3, 32, 32)
    again = VideoDataset(120, frames=8, seed=3, split="all").batch([5, 6])
    assert torch.equal(again["pixel_values"], batch["pixel_values"][5:7])
    c, r = batch["centres"], batch["radii"]
    assert ((c - r[..., None]) > 0).all() and ((c + r[..., None]) < 1).all()  # inside the frame throughout
    for i, a in enumerate(data.attributes):
        travel = c[i, -1] - c[i, 0]
        if a.motion == "growing":
            assert r[i, -1] > 2 * r[i, 0] and travel.abs().max() == 0
        elif a.motion == "moving up":
            assert travel[1] < -0.3 and travel[0] == 0 and r[i, 0] == r[i, -1]


def test_a_clip_played_backwards_shows_the_reversed_motion():
    data = VideoDataset(60, frames=8, seed=5, split="train")
    batch = data.batch(range(60))
    backwards = classify_motion(*track(batch["pixel_values"].flip(1)))
    want = [time_reversed(a) for a in data.attributes]
    assert backwards == [a.motion for a in want]
    assert want[0].caption() != data.attributes[0].caption()
    held_out = time_reversed(VideoAttributes("small", "red", "square", "moving right"))
    assert held_out.heldout


def test_reversed_pairs_flip_reversible_clips_and_swap_their_captions():
    latents = torch.randn(3, 4, 5, 2, 2)  # clips 2, 0, 1 of a set of three
    idx = torch.tensor([2, 0, 1])
    reversible = torch.tensor([True, True, False])  # clip 2's reversal is held out
    input_ids, reversed_ids = torch.arange(9).view(3, 3), 100 + torch.arange(9).view(3, 3)
    drop = torch.tensor([True, False, False])
    lat, ids, d = reversed_pairs(latents, idx, drop, reversible, input_ids, reversed_ids)
    assert torch.equal(lat[:3], latents) and torch.equal(d, drop.repeat(2))
    assert torch.equal(lat[3], latents[0])  # clip 2, as it is
    assert torch.equal(lat[4], latents[1].flip(1)) and torch.equal(lat[5], latents[2].flip(1))
    assert not torch.equal(lat[4], latents[1])
    # (the cache gives a clip whose reversal is held out its own caption as the reversed one)
    assert torch.equal(ids, torch.cat([input_ids[idx], reversed_ids[idx]]))


def test_prompt_path_reads_motion_and_size_words():
    centres, radii = prompt_path("a small red circle moving left", 16, seed=3)
    assert centres.shape == (16, 2) and np.allclose(radii, radii[0]) and radii[0] < 0.14
    assert centres[-1, 0] < centres[0, 0] - 0.25 and np.allclose(centres[:, 1], centres[0, 1])
    assert np.array_equal(centres, prompt_path("a small red circle moving left", 16, seed=3)[0])
    assert not np.array_equal(centres, prompt_path("a small red circle moving left", 16, seed=4)[0])
    centres, radii = prompt_path("A big ball moving down.", 16, seed=0)  # outside the grammar too
    assert radii[0] > 0.18 and centres[-1, 1] > centres[0, 1] + 0.25
    _, radii = prompt_path("a green square shrinking", 16, seed=0)
    assert radii[0] > 2 * radii[-1]
    assert prompt_path("a red circle", 16, 0) is None and prompt_path("moving up, moving left", 16, 0) is None


def test_warped_noise_carries_a_disc_along_the_path_and_stays_standard_normal(monkeypatch):
    import genkit.pipelines.video as pv

    shape = (2, 4, 16, 16, 16)
    still = video_noise(shape, 0.5, torch.Generator().manual_seed(0))
    # clips without a path draw the same numbers as before the option existed
    assert torch.equal(still, video_noise(shape, 0.5, torch.Generator().manual_seed(0), paths=[None] * 2))
    t = np.linspace(0, 1, 16)[:, None]
    move = (np.array([0.25, 0.5]) + t * np.array([0.5, 0.0]), np.full(16, 0.1))  # 8 px right, radius 1.6
    # the real noise: N(0, I) per frame; the disc's frames agree more (0.9, with the sign of its flip)
    # than the background's (0.5)
    big = video_noise((64, 4, 16, 16, 16), 0.5, torch.Generator().manual_seed(1), paths=[move] * 64)
    assert abs(big.std().item() - 1) < 0.01 and abs(big.mean().item()) < 0.01
    first, last = big[:, :, 0, 6:10, 3:5], big[:, :, 15, 6:10, 11:13]  # the disc at the start and end
    assert abs((first * last).mean().item() + 0.9) < 0.1  # frame 15 is flipped; about 0.03 of sampling error
    assert abs((first * big[:, :, 14, 6:10, 10:12]).mean().item() - 0.9) < 0.1  # frame 14 is not
    assert abs((big[:, :, 0, :, 7:9] * big[:, :, 15, :, 7:9]).mean().item() - 0.5) < 0.1  # background
    # the shared part alone (no per-frame noise), to read where it goes
    monkeypatch.setattr(pv, "PATH_SHARED", 1.0)
    x = video_noise(shape, 1.0 - 1e-12, torch.Generator().manual_seed(0), paths=[move, None])
    # frame 15: the disc around (12, 8) px is frame 0's disc around (4, 8) moved 8 px right, sign flipped ...
    assert torch.allclose(x[0, :, 15, 6:10, 11:13], -x[0, :, 0, 6:10, 3:5], atol=1e-4)
    # ... the background far from both discs is still, and the disc's noise is not the background's
    assert torch.allclose(x[0, :, 15, :, 7:9], x[0, :, 0, :, 7:9], atol=1e-4)
    assert not torch.allclose(x[0, :, 15, 6:10, 11:13], x[0, :, 0, 6:10, 11:13], atol=0.5)
    assert torch.allclose(x[1], x[1, :, :1].expand_as(x[1]), atol=1e-4)  # no path: held still
    # a disc that only grows is marked too: its middle alternates, and each frame's disc is centred
    grow = (np.full((16, 2), 0.5), np.linspace(0.1, 0.3, 16))
    g = torch.Generator().manual_seed(2)
    noise, inside = pv._carried(
        torch.randn(4, 16, 16, generator=g), torch.randn(4, 16, 16, generator=g), grow, 16
    )
    assert inside[0].sum() < inside[15].sum() and torch.equal(inside[0] & inside[15], inside[0])
    assert (noise[:, 1:, 7:9, 7:9] * noise[:, :-1, 7:9, 7:9]).mean() < -0.5
    assert torch.allclose((noise * inside).sum((-2, -1)), torch.zeros(4, 16), atol=1e-4)
    with pytest.raises(ValueError, match="1 paths for 2 clips"):
        video_noise(shape, 0.5, paths=[move])


def test_tracking_reads_the_motion_of_every_real_clip():
    data = VideoDataset(90, frames=16, seed=11, split="all")
    batch = data.batch(range(90))
    centres, areas = track(batch["pixel_values"])
    assert (centres - batch["centres"]).abs().max() < 0.06
    assert classify_motion(centres, areas) == [a.motion for a in data.attributes]
    still = batch["pixel_values"][:, :1].repeat(1, 16, 1, 1, 1)
    assert classify_motion(*track(still)) == ["none"] * 90
    assert flicker(still) == 0.0 and 0.002 < flicker(batch["pixel_values"]) < 0.02
    noisy = (still + 0.2 * torch.randn_like(still)).clamp(-1, 1)
    assert flicker(noisy) > 5 * flicker(batch["pixel_values"])


def test_video_classifier_reads_frames_and_clips():
    model = VideoClassifier(frames=8).eval()
    clips = VideoDataset(3, frames=8, seed=0).batch(range(3))
    pred = model.predict(clips["pixel_values"])
    assert pred["features"].shape == (3, 128) and pred["frame_shape"].shape == (3, 8)
    target_right = {"frame_shape": clips["labels"]["shape"][:, None].repeat(1, 8)}
    target_right["frame_color"] = clips["labels"]["color"][:, None].repeat(1, 8)
    assert frame_accuracy(target_right, clips["caption"]) == 1.0
    wrong = {**target_right, "frame_color": (target_right["frame_color"] + 1) % 5}
    wrong["frame_color"][0, :4] = target_right["frame_color"][0, :4]
    assert frame_accuracy(wrong, clips["caption"]) == pytest.approx(4 / 24)


def _dummy_unet():
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**UNET_PRESETS["unet-dummy"]).eval()
    with torch.no_grad():  # a trained-looking UNet: nothing zero
        for p in unet.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return unet


def test_untrained_video_unet_is_the_image_unet_on_every_frame():
    unet = _dummy_unet()
    video = video_unet(unet, heads=4).eval()
    b, t = 2, 5
    x = torch.randn(b, 4, t, 8, 8)
    ts = torch.tensor([10, 700])
    states = torch.randn(b, 6, 32)
    with torch.no_grad():
        got = video(x, ts, states.repeat_interleave(t, 0)).sample
        frames = x.transpose(1, 2).flatten(0, 1)
        want = unet(frames, ts.repeat_interleave(t), states.repeat_interleave(t, 0)).sample
    want = want.unflatten(0, (b, t)).transpose(1, 2)
    assert torch.allclose(got, want, atol=1e-5) and want.abs().mean() > 0.1
    # the motion modules are the only trainable layers, and they do mix frames once trained
    video.freeze_unet2d_params()
    trainable = {n for n, p in video.named_parameters() if p.requires_grad}
    assert trainable and all("motion_modules" in n for n in trainable)
    with torch.no_grad():
        for n, p in video.named_parameters():
            if n.endswith("proj_out.weight"):
                p.normal_(std=0.2)
        mixed = video(x, ts, states.repeat_interleave(t, 0)).sample
    assert (mixed - got).abs().mean() > 1e-3


@pytest.mark.parametrize(
    "target, parts",
    [
        ("cross-attention", {".attn2."}),
        ("all", {".attn1.", ".attn2.", ".ff.net.", ".conv1.", ".conv2."}),
    ],
)
def test_image_lora_starts_at_zero_and_fuses_into_the_exported_image_unet(target, parts):
    unet = _dummy_unet()
    video = video_unet(unet, heads=4).eval()
    video.freeze_unet2d_params()
    b, t = 2, 3
    x, ts, states = torch.randn(b, 4, t, 8, 8), torch.tensor([10, 700]), torch.randn(b * t, 6, 32)
    with torch.no_grad():
        before = video(x, ts, states).sample
    add_image_lora(video, rank=4, target_modules=IMAGE_LORA_TARGETS[target])
    trainable = [n for n, p in video.named_parameters() if p.requires_grad]
    lora = [n for n in trainable if "lora_" in n]
    # the LoRA is on the target's layers only (every one of them), never on the motion modules
    assert lora and all(any(q in n for q in parts) and "motion_modules" not in n for n in lora)
    assert all(any(q in n for n in lora) for q in parts)
    assert any("motion_modules" in n for n in trainable)
    assert set(trainable) - set(lora) == {n for n in trainable if "motion_modules" in n}
    with torch.no_grad():
        assert torch.allclose(video(x, ts, states).sample, before, atol=1e-6)  # B = 0: the image model
        for p in video.parameters():
            if p.requires_grad:
                p.normal_(std=0.2)
        trained = video(x, ts, states).sample
        assert (trained - before).abs().mean() > 1e-3
        adapter = motion_adapter_of(video)
        image = image_unet_of(video, unet)  # fuses the LoRA
        assert not any("lora" in k for k in image.state_dict())
        rebuilt = UNetMotionModel.from_unet2d(image, adapter).eval()
        assert torch.allclose(rebuilt(x, ts, states).sample, trained, atol=1e-4)
        # only the target's layers moved away from the image UNet's weights (the convolutions too for "all")
        moved = {k for k, v in image.state_dict().items() if not torch.equal(v, unet.state_dict()[k])}
        assert moved and all(any(q in k for q in parts) for k in moved)
        assert all(any(q in k for k in moved) for q in parts)


def test_new_words_train_only_their_rows():
    pipe = dummy_pipeline()
    tok, enc = pipe.tokenizer, pipe.text_encoder
    old_prompt = tok(["a small red circle at the top left"], return_tensors="pt")["input_ids"]
    old_rows = enc.get_input_embeddings().weight.shape[0]
    before = enc(old_prompt)[0].detach()
    added = add_words(tok, enc, ["moving", "up", "left", "shrinking"])
    assert added == ["moving", "shrinking", "up"]  # "left" is already a word of the image captions
    ids = tok(["a red circle moving up"])["input_ids"][0]
    assert tok.unk_token_id not in ids and len(tok) == old_rows + 3
    emb = enc.get_input_embeddings().weight
    emb.register_hook(NewRowsOnly(old_rows))
    opt = torch.optim.AdamW([emb], lr=0.1, weight_decay=0.0)
    enc(torch.tensor([ids]))[0].pow(2).mean().backward()
    opt.step()
    assert torch.equal(enc(old_prompt)[0].detach(), before)
    assert emb.grad[old_rows:].abs().sum() > 0 and emb.grad[:old_rows].abs().sum() == 0


@pytest.fixture(scope="module")
def tiny_video_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("video")
    dummy_pipeline().save_pretrained(root / "base")
    cfg = VideoTrainConfig(
        base=str(root / "base"),
        out=str(root / "run"),
        frames=4,
        max_train_steps=2,
        batch_size=2,
        num_train_clips=6,
        image_lora_rank=2,
        noise_warp=True,
        checkpointing_steps=1,
        device="cpu",
    )
    return cfg, train_video(cfg)


def test_frame_difference_loss_counts_only_errors_that_change_between_frames():
    g = torch.Generator().manual_seed(0)
    target = torch.randn(2, 4, 8, 4, 4, generator=g)
    shared = torch.randn(2, 4, 1, 4, 4, generator=g).expand_as(target)  # the same error in every frame
    assert frame_difference_loss(target + shared, target) < 1e-12  # rounding only
    independent = torch.randn(target.shape, generator=g)  # a new error every frame: twice the plain loss
    ratio = frame_difference_loss(target + independent, target) / independent.pow(2).mean()
    assert abs(ratio.item() - 2) < 0.15
    step = torch.zeros_like(target)
    step[:, :, 4:] = 1.0  # a background that changes grey once, half-way: one of 7 frame pairs
    assert frame_difference_loss(target + step, target).item() == pytest.approx(1 / 7)
    # --temporal-loss-background: changes only where ``where`` holds count, the mean stays over all
    where = torch.ones(2, 1, 7, 4, 4, dtype=torch.bool)
    where[:, :, 3] = False  # the pair of frames 3 and 4, where the step is
    assert frame_difference_loss(target + step, target, where).item() < 1e-12
    assert frame_difference_loss(target + step, target, ~where).item() == pytest.approx(1 / 7)


def test_outside_paths_leaves_out_the_shape_in_both_frames_of_a_pair():
    t = np.linspace(0, 1, 4)[:, None]
    move = (np.array([0.25, 0.5]) + t * np.array([0.5, 0.0]), np.full(4, 0.1))  # right, 8 px in 16
    grow = (np.full((4, 2), 0.5), np.array([0.05, 0.05, 0.05, 0.3]))  # grows only in the last frame
    where = outside_paths([move, grow], 4, 16, 16)
    assert where.shape == (2, 1, 3, 16, 16) and where.dtype == torch.bool
    discs = torch.stack([path_discs(p, 4, 16, 16) for p in (move, grow)])
    assert discs[0, 0, 8, 4] and not discs[0, 3, 8, 4]
    # the disc's pixels of either frame are out of its pairs; the corners, far from every disc, are in
    assert not where[0, 0, 0, 8, 4] and not where[0, 0, 0, 8, 7]  # frame 0's centre, frame 1's centre
    assert where[0, 0, 2, 8, 4]  # frame 0's centre, in the pair of frames 2 and 3 the shape has left
    assert where[:, :, :, 0, 0].all() and where[:, :, :, 15, 15].all()
    ring = discs[1, 3] & ~discs[1, 2]  # what the disc grew by in the last frame: out of the last pair only
    assert ring.any() and not where[1, 0, 2][ring].any() and where[1, 0, 1][ring].all()
    assert where[0].float().mean() > 0.7  # most of a 16 x 16 frame is background


def test_reversed_pairs_and_temporal_losses_train(tiny_video_run, tmp_path):
    cfg, _ = tiny_video_run
    pairs = VideoTrainConfig(
        base=cfg.base,
        out=str(tmp_path / "pairs"),
        frames=4,
        max_train_steps=1,
        batch_size=2,
        num_train_clips=4,
        reversed_pairs=True,
        temporal_loss=1.0,
        device="cpu",
    )
    model = train_video(pairs)
    info = json.loads((model / "training.json").read_text())
    assert info["reversed_pairs"] is True and info["noise_warp"] is False
    assert info["temporal_loss"] == 1.0 and info["temporal_loss_background"] is False
    background = replace(
        pairs, out=str(tmp_path / "background"), reversed_pairs=False, temporal_loss_background=True
    )
    info = json.loads((train_video(background) / "training.json").read_text())
    assert info["temporal_loss_background"] is True and info["reversed_pairs"] is False


def test_trained_video_model_loads_in_diffusers_animatediff(tiny_video_run):
    cfg, model = tiny_video_run
    info = json.loads((model / "training.json").read_text())
    assert info["added_words"] == ["down", "growing", "moving", "shrinking", "up"]
    index = json.loads((model / "model_index.json").read_text())  # shared as AnimateDiff models are
    assert (
        index["unet"] == ["diffusers", "UNet2DConditionModel"]
        and index["motion_adapter"][1] == "MotionAdapter"
    )
    pipe = AnimateDiffPipeline.from_pretrained(str(model))
    pipe.set_progress_bar_config(disable=True)
    # the image UNet is the base's with the trained cross-attention LoRA fused in, nothing else changed
    base = UNet2DConditionModel.from_pretrained(cfg.base, subfolder="unet").state_dict()
    image = UNet2DConditionModel.from_pretrained(str(model), subfolder="unet").state_dict()
    moved = {k for k, v in image.items() if not torch.allclose(v, base[k])}
    assert moved and all(".attn2." in k for k in moved) and image.keys() == base.keys()

    def run(seed):
        return pipe(
            "a small red circle moving up",
            num_frames=4,
            height=32,
            width=32,
            num_inference_steps=2,
            generator=torch.Generator().manual_seed(seed),
            output_type="np",
        ).frames[0]

    a, b, c = run(0), run(0), run(1)
    assert a.shape == (4, 32, 32, 3) and np.array_equal(a, b) and np.abs(a - c).mean() > 1e-3
    # the checkpoints resume: a longer run continues from step 2
    cfg.max_train_steps = 3
    train_video(cfg)
    assert (model.parent / "checkpoints" / "checkpoint-3").is_dir()


def test_reversed_noise_reverses_the_clip_of_an_image_model_per_frame(tiny_video_run):
    _, model = tiny_video_run
    pipe = load_video(model)
    pipe.set_progress_bar_config(disable=True)

    def clips(reverse):
        return generate_clips(pipe, ["a red circle growing"] * 2, [3, 4], 4, 2, 4.0, 0.5, reverse)

    # motion modules off: every frame is denoised alone, so reversing the noise reverses the clip
    zero_motion_outputs(pipe.unet)
    forward, back = clips(False), clips(True)
    assert (
        torch.allclose(back, forward.flip(1), atol=1e-5)
        and (forward[:, 0] - forward[:, 1]).abs().mean() > 1e-2
    )
    # motion modules on (their sinusoidal positions know the frame order): it no longer does
    torch.manual_seed(0)
    with torch.no_grad():
        for n, p in pipe.unet.named_parameters():
            if "motion_modules" in n and ".proj_out." in n:
                p.normal_(std=0.3)
    forward, back = clips(False), clips(True)
    assert (back - forward.flip(1)).abs().mean() > 1e-3


def test_genkit_video_writes_mp4_gif_and_metadata(tiny_video_run, tmp_path, capsys):
    _, model = tiny_video_run
    argv = ["video", "a blue square growing", "--model", str(model), "--steps", "2", "--frames", "4"]
    assert main([*argv, "--num-videos", "2", "--out", str(tmp_path), "--device", "cpu"]) == 0
    assert str(tmp_path) in capsys.readouterr().out
    records = [json.loads(line) for line in (tmp_path / "metadata.jsonl").read_text().splitlines()]
    assert [r["seed"] for r in records] == [0, 1]
    # the model was trained with --noise-warp: the noise follows a path drawn for "growing"
    radii = records[0]["noise_path"]["radii"]
    assert (
        len(radii) == 4 and radii[-1] > 2 * radii[0] and records[1]["noise_path"] != records[0]["noise_path"]
    )
    frames = np.stack(imageio.mimread(tmp_path / records[0]["file_name"]))
    assert frames.shape == (4, 128, 128, 3)
    gif = iio.imread(tmp_path / records[1]["gif"])
    assert gif.shape[0] == 4 and not np.array_equal(gif[0], iio.imread(tmp_path / records[0]["gif"])[0])
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_video_classifier_trains_and_loads(tmp_path, capsys):
    out = tmp_path / "vc"
    args = ["train", "video-classifier", "--out", str(out), "--max-train-steps", "2", "--batch-size", "4"]
    assert main([*args, "--frames", "4", "--checkpointing-steps", "1", "--device", "cpu"]) == 0
    model = load_video_classifier(str(out / "model"))
    clips = VideoDataset(2, frames=4, seed=0).batch(range(2))["pixel_values"]
    pred = model.predict(clips)
    assert pred["frame_color"].shape == (2, 4) and torch.isfinite(pred["features"]).all()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-1", "checkpoint-2"]
