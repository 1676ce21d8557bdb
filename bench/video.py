"""Text-to-video on moving shapes: the video model against real clips, a frame-shuffled control and the
image model it was built from, in one run.

Rows (each over seen prompts of the training split and every held-out (colour, shape, motion) prompt):
- ``real``: procedural clips of the prompts (the ceiling of every metric),
- ``shuffled``: the same real clips with their frames in a random order (the FVD control: right frames,
  wrong motion),
- ``real_through_vae``: the same real clips encoded and decoded by the video model's VAE, frame by frame
  (the floor that the latent space sets on flicker and FVD for any model that samples in it),
- ``video``: the video model (``--model``, the bundled ``video-shapes``), from the noise prior it was
  trained with (for a model trained with ``--noise-warp``, the noise carried along a path drawn for each
  prompt by ``genkit.data.video.prompt_path``; ``video_no_warp``: the same model with the noise held
  still, what it makes of the caption's words alone; ``video_independent_noise``: the same model from
  independent noise per frame, what a plain ``AnimateDiffPipeline`` call draws),
- ``image_per_frame``: the video model with its motion modules' output projections zeroed, i.e. the
  image model it animates applied to every frame (what the untrained video model is): no coherent motion.

Metrics: ``motion_accuracy`` (the motion read off the pixels by tracking the shape,
``genkit.metrics.video.classify_motion``), ``frame_prompt_accuracy`` (frames whose shape and colour the
video classifier's per-frame heads read as the caption's), ``flicker`` (mean |frame t+1 - frame t|) and its
ratio to the real clips', ``fvd`` (Fréchet distance to an independent set of real clips in the video
classifier's features) and seconds per 16-frame clip (25 steps, guidance 4, batched as the bench runs).

Caption control (``caption_control``, the ``video`` model and each ``--compare`` model): for each of a
few seeds, one (colour, shape) and the same noise under each of the six motion captions. ``accuracy`` is
the motion accuracy of those clips (chance 1/6); ``same_direction_all_captions`` is the fraction of seeds
whose four "moving ..." clips all travel the same way, i.e. where the noise, not the caption, set the
direction (0 for a model that follows the caption). ``reversed_with_noise``: the first of those clips
again with its frames' noise in reverse order (``generate_clips(reverse_noise=True)``); the fraction of
seeds whose motion turns into the opposite one (0 for a model that follows the caption, 1 for one whose
motion is read off the noise).

    python bench/video.py [--quick]   ->  bench/results/video.json
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, write_result  # noqa: E402

from genkit.data.shapes import COLORS, SHAPES  # noqa: E402
from genkit.data.video import (  # noqa: E402
    DIRECTIONS,
    HELDOUT_TRIPLES,
    MOTIONS,
    REVERSED_MOTION,
    VideoAttributes,
    prompt_path,
    video_prompt_set,
)
from genkit.loading import load_pipeline, resolve_device, resolve_model  # noqa: E402
from genkit.metrics.video import (  # noqa: E402
    classify_motion,
    load_video_classifier,
    real_clips,
    real_video_features,
    score_clips,
    track,
)
from genkit.models.video import zero_motion_outputs  # noqa: E402
from genkit.pipelines.video import (  # noqa: E402
    generate_clips,
    trained_noise_shared,
    trained_noise_warp,
)
from genkit.training.latents import vae_roundtrip  # noqa: E402
from genkit.video import clip_to_uint8, write_clip  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "video.json"


def generate(
    pipe, prompts, frames, steps, guidance, batch, shared, seeds=None, reverse_noise=False, warp=False
) -> tuple[torch.Tensor, float]:
    """Clips of ``prompts``; ``warp``: the shared noise carried along a path drawn for each prompt."""
    seeds = seeds or [1000 + i for i in range(len(prompts))]
    out, t0, path_fn = [], time.perf_counter(), prompt_path if warp else None
    for i in range(0, len(prompts), batch):
        chunk, chunk_seeds = prompts[i : i + batch], seeds[i : i + batch]
        out.append(
            generate_clips(pipe, chunk, chunk_seeds, frames, steps, guidance, shared, reverse_noise, path_fn)
        )
    return torch.cat(out), (time.perf_counter() - t0) / len(prompts)


def caption_control(pipe, num_seeds, frames, steps, guidance, batch, shared, warp) -> dict:
    """Each seed's noise under all six motion captions of one (colour, shape) (no held-out triple)."""
    pairs = [(c, s) for c in COLORS for s in SHAPES if not any((c, s, m) in HELDOUT_TRIPLES for m in MOTIONS)]
    rng = np.random.default_rng([0, 7])
    prompts, seeds = [], []
    for k in range(num_seeds):
        color, shape = pairs[rng.integers(len(pairs))]
        for m in MOTIONS:
            prompts.append(VideoAttributes("small" if m in DIRECTIONS else None, color, shape, m).caption())
            seeds.append(5000 + k)
    clips, _ = generate(pipe, prompts, frames, steps, guidance, batch, shared, seeds, warp=warp)
    pred = classify_motion(*track(clips))
    truth = list(MOTIONS) * num_seeds
    per_seed = [pred[k * len(MOTIONS) : (k + 1) * len(MOTIONS)] for k in range(num_seeds)]
    moving = [{q for m, q in zip(MOTIONS, row, strict=True) if m in DIRECTIONS} for row in per_seed]
    # the first caption of each seed again, with its frames' noise in reverse order
    first = slice(0, len(prompts), len(MOTIONS))
    back, _ = generate(pipe, prompts[first], frames, steps, guidance, batch, shared, seeds[first], True, warp)
    back_pred = classify_motion(*track(back))
    return {
        "accuracy": float(np.mean([q == t for q, t in zip(pred, truth, strict=True)])),
        "same_direction_all_captions": float(np.mean([len(r) == 1 for r in moving])),
        "reversed_with_noise": float(
            np.mean([REVERSED_MOTION.get(q) == b for q, b in zip(pred[first], back_pred, strict=True)])
        ),
        "num_seeds": num_seeds,
        "tracked": [[p, s, q] for p, s, q in zip(prompts, seeds, pred, strict=True)],  # prompt, seed, motion
        "tracked_reversed_noise": [
            [p, s, q] for p, s, q in zip(prompts[first], seeds[first], back_pred, strict=True)
        ],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer prompts (a few minutes)")
    ap.add_argument("--model", default="video-shapes", help="bundled name or AnimateDiff folder")
    ap.add_argument("--classifier", default=None, help="video classifier folder (default: bundled)")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--guidance", type=float, default=4.0)
    ap.add_argument("--batch", type=int, default=8, help="clips per pipeline call")
    ap.add_argument("--no-baseline", action="store_true", help="skip the image-model-per-frame row")
    ap.add_argument(
        "--compare", nargs="*", default=[], help="more AnimateDiff folders, one row each (own noise prior)"
    )
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)

    device = resolve_device(args.device)
    torch.manual_seed(0)
    reps = 1 if args.quick else 2
    prompts = {
        "seen": video_prompt_set("train", 30 if args.quick else 90) * reps,
        "heldout": video_prompt_set("heldout") * reps,
    }
    classifier = load_video_classifier(args.classifier, device)
    ref = real_video_features(classifier)
    t0 = time.perf_counter()

    rows: dict[str, dict] = {"real": {}, "shuffled": {}}
    clips: dict[str, dict] = {"real": {}}
    g = torch.Generator().manual_seed(0)
    for split, ps in prompts.items():
        real = real_clips(ps, args.frames, seed=4242)
        perm = torch.stack([torch.randperm(args.frames, generator=g) for _ in ps])
        shuffled = real[torch.arange(len(ps))[:, None], perm]
        rows["real"][split] = score_clips(real, ps, classifier, ref)
        rows["shuffled"][split] = score_clips(shuffled, ps, classifier, ref)
        clips["real"][split] = real

    def run(name, pipe, shared, warp):
        rows[name] = {}
        for split, ps in prompts.items():
            x, spc = generate(pipe, ps, args.frames, args.steps, args.guidance, args.batch, shared, warp=warp)
            rows[name][split] = {**score_clips(x, ps, classifier, ref), "seconds_per_clip": spc}
            clips.setdefault(name, {})[split] = x
            print(f"  {name} {split} done ({time.perf_counter() - t0:.0f}s)", file=sys.stderr)

    path = resolve_model(args.model)
    pipe = load_pipeline(path, "dpm", device)
    shared, warp = trained_noise_shared(path), trained_noise_warp(path)
    control: dict[str, dict] = {}
    rows["real_through_vae"] = {}
    for split, ps in prompts.items():
        rows["real_through_vae"][split] = score_clips(
            vae_roundtrip(pipe.vae, clips["real"][split]), ps, classifier, ref
        )

    def control_of(name, pipe, shared, warp):
        n = 6 if args.quick else 12
        control[name] = caption_control(
            pipe, n, args.frames, args.steps, args.guidance, args.batch, shared, warp
        )
        print(f"  {name} caption control done ({time.perf_counter() - t0:.0f}s)", file=sys.stderr)

    run("video", pipe, shared, warp)
    control_of("video", pipe, shared, warp)
    if warp:  # the same noise held still: what the network makes of the caption's words alone
        run("video_no_warp", pipe, shared, False)
        control_of("video_no_warp", pipe, shared, False)
    if shared > 0:  # what a plain AnimateDiffPipeline call draws: independent noise per frame
        run("video_independent_noise", pipe, 0.0, False)
    if not args.no_baseline:
        trained = pipe.unet
        pipe.unet = zero_motion_outputs(copy.deepcopy(trained))  # the image model per frame
        run("image_per_frame", pipe, shared, warp)
        pipe.unet = trained
    compared = []
    for other in args.compare:
        p = resolve_model(other)
        name = Path(other).parent.name if Path(other).name == "model" else Path(other).name
        compared.append(name)
        other_pipe = load_pipeline(p, "dpm", device)
        other_shared, other_warp = trained_noise_shared(p), trained_noise_warp(p)
        run(name, other_pipe, other_shared, other_warp)
        control_of(name, other_pipe, other_shared, other_warp)

    v = rows["video"]
    result = {
        "targets": {
            "motion_accuracy_seen": v["seen"]["motion_accuracy"],
            "motion_accuracy_heldout": v["heldout"]["motion_accuracy"],
            "frame_prompt_accuracy": (
                v["seen"]["frame_prompt_accuracy"] + v["heldout"]["frame_prompt_accuracy"]
            )
            / 2,
            "flicker_ratio": v["seen"]["flicker_ratio"],
            "fvd_seen": v["seen"]["fvd"],
            "fvd_shuffled_control": rows["shuffled"]["seen"]["fvd"],
            "fvd_ratio_vs_shuffled": v["seen"]["fvd"] / rows["shuffled"]["seen"]["fvd"],
            "flicker_ratio_real_through_vae": rows["real_through_vae"]["seen"]["flicker_ratio"],
            "fvd_real_through_vae": rows["real_through_vae"]["seen"]["fvd"],
            "seconds_per_clip": v["seen"]["seconds_per_clip"],
            "caption_control_accuracy": control["video"]["accuracy"],
            "same_direction_all_captions": control["video"]["same_direction_all_captions"],
            "reversed_with_noise": control["video"]["reversed_with_noise"],
            **(
                {
                    "motion_accuracy_seen_no_warp": rows["video_no_warp"]["seen"]["motion_accuracy"],
                    "caption_control_accuracy_no_warp": control["video_no_warp"]["accuracy"],
                }
                if warp
                else {}
            ),
        },
        "rows": rows,
        "caption_control": control,
        "config": {
            **vars(args),
            "noise_shared": shared,
            "noise_warp": warp,
            "seen_prompts": len(prompts["seen"]),
            "heldout_prompts": len(prompts["heldout"]),
        },
        "machine": machine(device),
        "seconds": time.perf_counter() - t0,
    }

    print(
        f"{'row':>24} {'split':>8} {'motion acc':>10} {'frame acc':>9} {'flicker x':>9} {'FVD':>8} {'s/clip':>7}"
    )
    for name, row in rows.items():
        for split, r in row.items():
            spc = f"{r['seconds_per_clip']:.2f}" if "seconds_per_clip" in r else "-"
            print(
                f"{name:>24} {split:>8} {r['motion_accuracy']:>10.3f} {r['frame_prompt_accuracy']:>9.3f} "
                f"{r['flicker_ratio']:>9.2f} {r['fvd']:>8.2f} {spc:>7}"
            )
    t = result["targets"]
    print(
        f"video: motion accuracy {t['motion_accuracy_seen']:.3f} seen / {t['motion_accuracy_heldout']:.3f} "
        f"held-out, frame accuracy {t['frame_prompt_accuracy']:.3f}, flicker {t['flicker_ratio']:.2f}x real, "
        f"FVD {t['fvd_seen']:.2f} vs shuffled {t['fvd_shuffled_control']:.2f}, {t['seconds_per_clip']:.2f} s/clip"
    )
    for name, c in control.items():
        print(
            f"{name} caption control ({c['num_seeds']} seeds x {len(MOTIONS)} motion captions): motion "
            f"accuracy {c['accuracy']:.3f} (chance {1 / len(MOTIONS):.3f}), the same direction under all "
            f"four 'moving' captions for {c['same_direction_all_captions']:.2f} of the seeds; with the "
            f"frames' noise reversed, the motion reverses for {c['reversed_with_noise']:.2f} of them"
        )
    # a strip of clips to look at: real, the video model and each --compare model (one row each), the
    # first seen and the first held-out prompts
    strip = Path(args.out).with_name(Path(args.out).stem + "_samples.gif")
    shown = ["real", "video", *compared]
    pick = [(split, i) for split, ps in prompts.items() for i in range(min(4, len(ps)))]
    frames = np.concatenate(
        [
            np.concatenate([clip_to_uint8(clips[k][split][i].numpy(), 3) for split, i in pick], axis=2)
            for k in shown
        ],
        axis=1,
    )
    write_clip(frames, strip, fps=8)
    print(f"wrote {strip} (rows, top to bottom: {', '.join(shown)}; prompts {pick})")
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
