"""Benchmark the mesh-anchored hash-blendshape avatar against its two baselines, all in one run.

Renders the procedural head's monocular video (genkit avatar data), trains the avatar, the global-hash
blendshape baseline (NeRFBlendShape-style) and the large-MLP dynamic NeRF with the same steps, rays,
shell sampler and compositing, then reports for each: PSNR and SSIM (own implementation) inside the head
mask on held-out expressions (``test_expr``), expressions beyond the training range (``test_extreme``) and
held-out views (``test_view``); frames per second at 128^2 and 256^2 (warm-up, then repeated rounds over
the held-out frames with the models taking turns round by round; per-stage times: shell, k-NN search,
hash gather+blend, CNN, MLP, compositing) with ``render_frame``'s defaults (every model: the numba shell
(rasterizer, rays and samples) and compositing, the field run ``render_chunk`` rays at a time, 4096 for
the avatar and the global hash, 512 for the big MLP; the avatar: its numba vertex frames and fused
search+gather kernel), the avatar again on its torch reference path (torch shell, frames, search, gather
and compositing, timed separately), the big MLP again at 256, 1024 and 4096 rays per call (128^2; the
avatar's speedup is taken over the fastest of its four chunk sizes), then again at 128^2 after
``compile_field`` (``torch.compile`` of the avatar's MLP after its numba kernel, of the baselines' whole
fields; ``--no-compile`` skips it); and for the two-level k-NN search (torch) against brute force on the
avatar's own shell samples: recall@k and speedup, with and without the per-ray shortlist; the avatar's
per-frame table merge, numba against ``torch.bmm``; the PSNR of the shipped avatar-head on the
held-out expressions; and an ablation, trained and evaluated for quality only: the avatar without the
vertex-normal input of its MLP (``normal_input="none"``, the paper's input).

Training samples 8 points per ray in the shell, rendering 4 (``genkit avatar render``'s default), for
every model.

    python bench/avatar.py            # 1000 training steps per model
    python bench/avatar.py --reuse    # evaluate the models a previous run trained (same steps) again
    python bench/avatar.py --quick    # 300 steps per model, fewer timing rounds

Writes bench/results/avatar.json and avatar_side_by_side.gif (ground truth | avatar | global hash | big
MLP on held-out expressions), prints a table.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _common import machine, write_result  # bench/ is on sys.path when run as a script

from genkit.loading import bundled_path
from genkit.render.avatar import MODELS as MODEL_CLASSES
from genkit.render.avatar import (
    NO_STAGES,
    AvatarTrainConfig,
    KNNIndex,
    Stages,
    compile_field,
    knn_brute,
    load_avatar,
    load_head_split,
    make_head_dataset,
    render_frame,
    render_split,
    shell_samples,
    train_avatar,
)
from genkit.render.avatar.model import blend_tables
from genkit.utils import write_video

RESULTS = Path(__file__).parent / "results" / "avatar.json"
MODELS = ("avatar", "global_hash", "big_mlp")
# what each trained entry is: (model, its options); the ablation is measured for quality only
VARIANTS = {
    "avatar": ("avatar", {"normal_input": "head"}),  # what --normal-input auto picks on this head-lit data
    "global_hash": ("global_hash", {}),
    "big_mlp": ("big_mlp", {}),
    "avatar_no_normal": ("avatar", {"normal_input": "none"}),
}
SPLITS = ("test_expr", "test_extreme", "test_view")
BIG_MLP_CHUNKS = (256, 1024, 4096)  # besides its render_chunk (512)


def quality(model, data, samples) -> tuple[dict, list]:
    out, frames = {}, []
    for split, d in data.items():
        p, s, images = render_split(model, d, None, samples)
        out[split] = {"psnr": float(np.mean(p)), "ssim": float(np.mean(s))}
        if split == "test_expr":
            frames = images
    return out, frames


def speed(models: dict, d, size, samples, rounds, stages=True) -> dict:
    """Frames per second of every entry of ``models`` (name -> (model, backend, chunk)) at ``size``^2 over the
    held-out frames, after a warm-up (which also compiles a compiled field or the numba kernels), with
    per-stage ms (``stages``). The entries take turns, all the frames each, round after round, so that a
    change in the load of a shared machine falls on all of them alike while each model's tables stay in
    the cache from frame to frame, as in a real-time loop. On CUDA each timing waits for the device
    (``torch.cuda.synchronize``); time the stages only on the CPU (a stage timer would see launches)."""
    focal = d.focal * size / d.size
    sync = torch.cuda.synchronize if d.vertices.is_cuda else (lambda: None)
    meshes = {name: m.mesh_index() for name, (m, _, _) in models.items()}

    def frame(name, i, timer):
        index, neighbour = meshes[name]
        model, backend, chunk = models[name]
        return render_frame(
            model,
            d.expressions[i],
            d.pose[i],
            d.vertices[i],
            d.c2w[i],
            focal,
            size,
            index,
            neighbour,
            samples,
            stages=timer,
            backend=backend,
            chunk=chunk,
        )

    warmup, timers, seconds, faults, n = {}, {}, dict.fromkeys(models, 0.0), dict.fromkeys(models, 0), 0
    for name in models:
        t = time.perf_counter()
        for i in range(2):
            frame(name, i, Stages() if stages else NO_STAGES)
        sync()
        warmup[name] = time.perf_counter() - t
        timers[name] = Stages() if stages else NO_STAGES
    for _ in range(rounds):
        for name in models:
            t, f0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            for i in range(len(d)):
                frame(name, i, timers[name])
            sync()
            seconds[name] += time.perf_counter() - t
            faults[name] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
        n += len(d)
    return {
        name: {
            "fps": n / seconds[name],
            "ms_per_frame": 1000 * seconds[name] / n,
            "warmup_seconds": warmup[name],
            "page_faults_per_frame": faults[name] / n,  # minor faults: fresh memory touched
            **({"stages_ms": {k: 1000 * v / n for k, v in timers[name].seconds.items()}} if stages else {}),
        }
        for name in models
    }


def knn_check(d, k, samples, thickness) -> dict:
    """Recall@k and time of the two-level search (``KNNIndex``'s default per-ray shortlist, and without
    it: every sample ranks all the probed members) against brute force on shell samples of held-out
    frames, all three on the same samples."""
    searches = {
        "brute": lambda x, v, k: knn_brute(x.reshape(-1, 3), v, k),
        "two_level": KNNIndex(d.template).search,
        "two_level_no_shortlist": KNNIndex(d.template, shortlist=None).search,
    }
    seconds, hits = dict.fromkeys(searches, 0.0), dict.fromkeys(searches, 0)
    total = 0
    for i in range(len(d)):
        shell = shell_samples(d.vertices[i], d.faces, d.c2w[i], d.focal, d.size, samples, thickness)
        x, ref = shell.points(), None
        for name, search in searches.items():
            t = time.perf_counter()
            _, got = search(x, d.vertices[i], k)
            seconds[name] += time.perf_counter() - t
            ref = got if name == "brute" else ref
            hits[name] += int((ref[:, :, None] == got[:, None, :]).any(-1).sum())
        total += ref.numel()
    return {
        "recall": hits["two_level"] / total,
        "speedup": seconds["brute"] / seconds["two_level"],
        "recall_no_shortlist": hits["two_level_no_shortlist"] / total,
        "speedup_no_shortlist": seconds["brute"] / seconds["two_level_no_shortlist"],
        **{f"{name}_ms": 1000 * t / len(d) for name, t in seconds.items()},
    }


@torch.no_grad()
def merge_check(model, d, rounds: int = 10) -> dict:
    """The avatar's per-frame table merge on the held-out expressions: the numba loop parallel over the
    vertices against ``torch.bmm`` (``blend_tables``), taking turns frame by frame; ms per frame."""
    backends = ("numba", "torch")
    seconds = dict.fromkeys(backends, 0.0)
    blends = [model.blend_weights(e, p) for e, p in zip(d.expressions, d.pose, strict=True)]
    for _ in range(rounds):
        for blend in blends:
            for b in backends:
                t = time.perf_counter()
                blend_tables(model.tables, blend, b)
                seconds[b] += time.perf_counter() - t
    n = rounds * len(blends)
    return {f"{b}_ms": 1000 * seconds[b] / n for b in backends} | {
        "speedup": seconds["torch"] / seconds["numba"]
    }


def reusable(path: Path, model: str, options: dict, train: dict) -> bool:
    """A model trained earlier in ``path`` with today's architecture of ``model`` (a name in
    ``genkit.render.avatar.MODELS``) with ``options`` and the same ``train`` settings (data, steps,
    samples, seed)."""
    if not (path / "avatar.json").is_file():
        return False
    cls = MODEL_CLASSES[model]
    # through the class, so that options added since take their defaults, as loading gives them
    saved = cls.from_config(json.loads((path / "config.json").read_text())).config
    saved, fresh = (json.loads(json.dumps(dict(c))) for c in (saved, cls(**options).config))  # lists
    same_arch = all(saved.get(k) == v for k, v in fresh.items() if not k.startswith("_"))
    trained = json.loads((path / "avatar.json").read_text())["train"]
    return same_arch and all(trained.get(k) == v for k, v in train.items())


def train_or_reuse(
    data: str, out: str, model: str, options: dict, steps: int, samples: int, reuse: bool, seed: int = 0
):
    """(the trained model, its training minutes): ``genkit avatar train`` of ``model`` with ``options`` on
    ``data`` into ``out``, saved in fp16 as it would ship, or with ``reuse`` the one a previous run
    trained there with the same architecture and settings."""
    cfg = AvatarTrainConfig(
        data=data,
        out=out,
        model=model,
        **options,
        max_train_steps=steps,
        num_samples=samples,
        checkpointing_steps=steps,
        eval_frames=0,
        save_dtype="fp16",  # evaluate exactly what would ship
        seed=seed,
    )
    path = Path(out) / "model"
    same = {"data": data, "max_train_steps": steps, "num_samples": samples, "seed": seed}
    if reuse and reusable(path, model, options, same):
        minutes = json.loads((Path(out) / "report.json").read_text())["train_minutes_this_run"]
    else:  # from scratch: a previous run's checkpoints may be of another architecture or length
        shutil.rmtree(Path(out) / "checkpoints", ignore_errors=True)
        t = time.perf_counter()
        path = train_avatar(cfg)
        minutes = (time.perf_counter() - t) / 60
    return load_avatar(path)[0], minutes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="300 steps per model, fewer timing rounds")
    ap.add_argument(
        "--steps", type=int, default=None, help="training steps per model (default 1000; quick 300)"
    )
    ap.add_argument("--data", default="runs/bench-avatar/head", help="head dataset (rendered if missing)")
    ap.add_argument("--runs", default="runs/bench-avatar", help="where the three models train")
    ap.add_argument(
        "--samples", type=int, default=8, help="training samples per ray in the shell (every model)"
    )
    ap.add_argument(
        "--render-samples",
        type=int,
        default=4,
        help="samples per ray when rendering (every model; CLI default)",
    )
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="evaluate the models already trained in --runs with the same steps",
    )
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile timings of every model")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    steps = args.steps or (300 if args.quick else 1000)
    rounds = 1 if args.quick else 4
    torch.manual_seed(0)
    t_start = time.perf_counter()

    if not (Path(args.data) / "meta.json").is_file():
        make_head_dataset(args.data, 128)
    data = {s: load_head_split(args.data, s) for s in SPLITS}
    rows, frames, train_minutes, models = {}, {}, {}, {}
    for name, (model, options) in VARIANTS.items():
        models[name], train_minutes[name] = train_or_reuse(
            args.data, f"{args.runs}/{name}", model, options, steps, args.samples, args.reuse
        )
        q, frames[name] = quality(models[name], data, args.render_samples)
        rows[name] = {
            "quality": q,
            "train_minutes": train_minutes[name],
            "params": sum(p.numel() for p in models[name].parameters()),
        }
        print(
            f"  {name}: trained {train_minutes[name]:.1f} min, PSNR {q['test_expr']['psnr']:.2f} dB",
            file=sys.stderr,
        )

    d = data["test_expr"]
    shipped, _ = load_avatar(bundled_path("avatar-head"))  # what genkit ships, on the same held-out frames
    psnr_shipped = float(np.mean(render_split(shipped, d, None, args.render_samples)[0]))
    print("  timing (eager, then compiled)", file=sys.stderr)
    # every model with render_frame's defaults (backend "auto": the numba shell and compositing, the
    # avatar's numba kernels; the field run render_chunk rays at a time), the avatar again on the torch
    # reference path (torch rasterizer and field), and at 128^2 the big MLP at other chunk sizes
    models.pop("avatar_no_normal")  # the ablation: quality only
    entries = {name: (m, "auto", None) for name, m in models.items()}
    entries["avatar_torch"] = (models["avatar"], "torch", None)
    sweep = {f"big_mlp_chunk{c}": (models["big_mlp"], "auto", c) for c in BIG_MLP_CHUNKS}
    rows |= {name: {} for name in ("avatar_torch", *sweep)}
    for key, size, n in (("speed_128", 128, rounds), ("speed_256", 256, 1)):
        for name, r in speed(
            entries | (sweep if size == 128 else {}), d, size, args.render_samples, n
        ).items():
            rows[name][key] = r
    if not args.no_compile:
        for m in models.values():
            compile_field(m)  # the avatar: its MLP after the numba kernel; the baselines: the whole field
        compiled = {name: (m, "auto", None) for name, m in models.items()}
        for name, r in speed(compiled, d, 128, args.render_samples, rounds, stages=False).items():
            rows[name]["speed_128_compiled"] = r

    knn = knn_check(d, 4, args.render_samples, 0.04)
    merge = merge_check(models["avatar"], d)

    gif = Path(args.out).with_name("avatar_side_by_side.gif")
    strip = [torch.cat([d.images[i]] + [frames[m][i] for m in MODELS], 1) for i in range(len(d))]
    write_video(gif, list((torch.stack(strip).clamp(0, 1).numpy() * 255).round().astype(np.uint8)), 4)

    a, g, b, t = (rows[m] for m in (*MODELS, "avatar_torch"))
    big_fps = {models["big_mlp"].render_chunk: b["speed_128"]["fps"]}
    big_fps |= {c: rows[f"big_mlp_chunk{c}"]["speed_128"]["fps"] for c in BIG_MLP_CHUNKS}
    best_chunk = max(big_fps, key=big_fps.get)
    result = {
        "psnr_heldout": a["quality"]["test_expr"]["psnr"],
        "psnr_global_hash": g["quality"]["test_expr"]["psnr"],
        "psnr_big_mlp": b["quality"]["test_expr"]["psnr"],
        "psnr_shipped_avatar": psnr_shipped,
        "psnr_avatar_no_normal": rows["avatar_no_normal"]["quality"]["test_expr"]["psnr"],
        "fps_128": a["speed_128"]["fps"],
        "fps_256": a["speed_256"]["fps"],
        "speedup_vs_big_mlp": a["speed_128"]["fps"] / big_fps[best_chunk],  # its fastest chunk size
        "speedup_vs_global_hash": a["speed_128"]["fps"] / g["speed_128"]["fps"],
        "fps_128_torch": t["speed_128"]["fps"],
        "fps_256_torch": t["speed_256"]["fps"],
        "speedup_vs_big_mlp_torch": t["speed_128"]["fps"] / big_fps[best_chunk],
        "numba_vs_torch_128": a["speed_128"]["fps"] / t["speed_128"]["fps"],
        "table_merge": merge,
        "render_chunk_rays": {name: m.render_chunk for name, m in models.items()},
        "big_mlp_fps_128_by_chunk": {str(c): big_fps[c] for c in sorted(big_fps)},
        "big_mlp_best_chunk": best_chunk,
        "speedup_vs_big_mlp_default_chunk": a["speed_128"]["fps"] / b["speed_128"]["fps"],
        **(
            {
                "fps_128_compiled": a["speed_128_compiled"]["fps"],
                "speedup_vs_big_mlp_compiled": a["speed_128_compiled"]["fps"]
                / b["speed_128_compiled"]["fps"],
            }
            if "speed_128_compiled" in a
            else {}
        ),
        "knn_speedup": knn["speedup"],
        "knn_recall": knn["recall"],
        "knn": knn,
        "samples_per_ray": args.render_samples,
        "train_samples_per_ray": args.samples,
        "train_steps": steps,
        "models": rows,
        "quick": args.quick,
        "bench_minutes": (time.perf_counter() - t_start) / 60,
        "machine": machine("cpu"),
        "command": " ".join(["python", "bench/avatar.py", *(argv if argv is not None else sys.argv[1:])]),
    }
    write_result(args.out, result)

    print(
        f"{'model':>12} {'PSNR expr':>9} {'PSNR ext':>9} {'PSNR view':>9} {'SSIM':>6} {'fps128':>7} {'fps256':>7} {'train min':>9}"
    )
    for name in MODELS:
        r = rows[name]
        q = r["quality"]
        print(
            f"{name:>12} {q['test_expr']['psnr']:9.2f} {q['test_extreme']['psnr']:9.2f} {q['test_view']['psnr']:9.2f} "
            f"{q['test_expr']['ssim']:6.3f} {r['speed_128']['fps']:7.1f} {r['speed_256']['fps']:7.1f} {r['train_minutes']:9.1f}"
        )
    for name, r in (("numba", a), ("torch", t)):
        stages = ", ".join(f"{k} {v:.1f}" for k, v in r["speed_128"]["stages_ms"].items())
        print(f"avatar stages at 128^2, {name} path (ms/frame): {stages}")
    print(
        f"avatar on the torch reference path: {t['speed_128']['fps']:.1f} fps at 128^2, "
        f"{t['speed_256']['fps']:.1f} at 256^2; the numba kernels {result['numba_vs_torch_128']:.1f}x faster; "
        f"torch path vs big MLP {result['speedup_vs_big_mlp_torch']:.1f}x"
    )
    print(
        f"table merge per frame: numba {merge['numba_ms']:.2f} ms, torch.bmm {merge['torch_ms']:.2f} ms "
        f"({merge['speedup']:.1f}x)"
    )
    if "fps_128_compiled" in result:
        print(
            "torch.compile fps at 128^2: "
            + ", ".join(f"{m} {rows[m]['speed_128_compiled']['fps']:.1f}" for m in MODELS)
            + f"; avatar vs big MLP {result['speedup_vs_big_mlp_compiled']:.1f}x faster"
        )
    faults = {
        c: rows[f"big_mlp_chunk{c}" if c in BIG_MLP_CHUNKS else "big_mlp"]["speed_128"][
            "page_faults_per_frame"
        ]
        for c in big_fps
    }
    print(
        "big MLP fps at 128^2 by rays per call: "
        + ", ".join(f"{c}: {big_fps[c]:.2f} ({faults[c]:.0f} page faults/frame)" for c in sorted(big_fps))
        + f"; the avatar is compared with the fastest ({best_chunk})"
    )
    print(f"shipped avatar-head on the held-out expressions: {psnr_shipped:.3f} dB")
    q = rows["avatar_no_normal"]["quality"]
    print(
        "avatar without the normal input (the paper's MLP input), PSNR expr/ext/view: "
        + "/".join(f"{q[s]['psnr']:.2f}" for s in SPLITS)
        + " dB"
    )
    print(
        f"k-NN two-level without the per-ray shortlist: recall@4 {knn['recall_no_shortlist']:.4f}, "
        f"speedup {knn['speedup_no_shortlist']:.1f}x"
    )
    print(
        f"k-NN two-level vs brute force: recall@4 {knn['recall']:.4f}, speedup {knn['speedup']:.1f}x; "
        f"avatar vs big MLP {result['speedup_vs_big_mlp']:.1f}x faster (numba kernels, eager torch MLP)"
    )
    print(f"wrote {args.out} and {gif}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
