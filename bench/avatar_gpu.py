"""The head avatar on a GPU: frames per second at 512^2 (the issue's target: 30) and 128^2 for the avatar
and both baselines in one run, eager and after ``compile_field``, with the avatar's speedup over each.

The models, the held-out frames (``test_expr`` of the procedural head) and the renderer are those of
``bench/avatar.py`` (its ``speed``: a warm-up, then rounds over the frames with the models taking turns,
waiting for the device at the end of each timing), on ``--device`` (default cuda): every model with
``render_frame``'s defaults there (on CUDA: the torch shell and compositing, the avatar's table lookups in
the neural fields' Triton hash-grid kernel); compiled: ``torch.compile`` of each whole torch field
(inductor's Triton kernels on CUDA). The models are those ``bench/avatar.py`` trained in ``--runs`` where
present; otherwise the shipped avatar-head for the avatar (``make weights-avatar``: the same training)
and the default architectures untrained for the baselines, which render at the same speed (every shell
sample is evaluated, nothing depends on the weights' values); the JSON's ``trained`` says which (the
folder, or false). The PSNR of each model on the same frames is reported too (meaningful only for
trained models).

    python bench/avatar_gpu.py                 # needs CUDA; 3 rounds, 512^2 and 128^2
    python bench/avatar_gpu.py --quick         # 1 round
    python bench/avatar_gpu.py --device cpu --sizes 64 --out /tmp/avatar_gpu.json   # checks the script

Writes bench/results/avatar_gpu.json, prints a table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _common import machine, write_result  # bench/ is on sys.path when run as a script
from avatar import MODELS, speed

from genkit.loading import bundled_path, resolve_device
from genkit.render.avatar import (
    AvatarTrainConfig,
    compile_field,
    load_avatar,
    load_head_split,
    make_head_dataset,
    render_split,
)
from genkit.render.avatar.trainer import build_model
from genkit.utils import GenkitError

RESULTS = Path(__file__).parent / "results" / "avatar_gpu.json"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one timing round")
    ap.add_argument("--device", default="cuda", help="where to render: cuda (default), cuda:1, cpu, auto")
    ap.add_argument("--sizes", default="512,128", help="image sizes, comma-separated")
    ap.add_argument("--data", default="runs/bench-avatar/head", help="head dataset (rendered if missing)")
    ap.add_argument("--runs", default="runs/bench-avatar", help="where bench/avatar.py trained the models")
    ap.add_argument("--render-samples", type=int, default=4, help="samples per ray (every model)")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile timings")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    try:
        args.device = resolve_device(args.device)
    except GenkitError as e:
        print(f"error: {e}; --device cpu runs it on the CPU", file=sys.stderr)
        return 2
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 16:
        print(
            f"error: --sizes takes comma-separated sizes of 16 or more, got {args.sizes!r}", file=sys.stderr
        )
        return 2
    device = torch.device(args.device)
    rounds = 1 if args.quick else 3
    t_start = time.perf_counter()

    if not (Path(args.data) / "meta.json").is_file():
        make_head_dataset(args.data, 128)
    d = load_head_split(args.data, "test_expr")
    models, trained, psnr = {}, {}, {}
    for name in MODELS:
        path = Path(args.runs) / name / "model"
        if name == "avatar" and not (path / "avatar.json").is_file():
            path = bundled_path("avatar-head")  # make weights-avatar: bench/avatar.py's avatar, bit for bit
        trained[name] = str(path) if (path / "avatar.json").is_file() else False
        model = (
            load_avatar(path)[0]
            if trained[name]
            else build_model(AvatarTrainConfig(data=args.data, model=name), d).eval()
        )
        models[name] = model.to(device)
        psnr[name] = float(np.mean(render_split(models[name], d, None, args.render_samples)[0]))
    d = d.to(device)

    rows = {name: {} for name in MODELS}
    eager = {name: (m, "auto", None) for name, m in models.items()}
    for size in sizes:
        for name, r in speed(eager, d, size, args.render_samples, rounds, stages=False).items():
            rows[name][f"speed_{size}"] = r
    if not args.no_compile:
        for m in models.values():
            compile_field(m, "torch")  # the whole torch field of every model
        compiled = {name: (m, "torch", None) for name, m in models.items()}
        for size in sizes:
            for name, r in speed(compiled, d, size, args.render_samples, rounds, stages=False).items():
                rows[name][f"speed_{size}_compiled"] = r

    # one tag per timing: "512", "512_compiled", ...
    tags = [f"{s}{c}" for s in sizes for c in ("", "_compiled") if f"speed_{s}{c}" in rows["avatar"]]
    fps = {name: {t: rows[name][f"speed_{t}"]["fps"] for t in tags} for name in MODELS}
    result = {
        **{f"fps_{t}": fps["avatar"][t] for t in tags},
        **{f"speedup_vs_{b}_{t}": fps["avatar"][t] / fps[b][t] for t in tags for b in MODELS[1:]},
        "trained": trained,
        "psnr_test_expr": psnr,
        "models": rows,
        "samples_per_ray": args.render_samples,
        "rounds": rounds,
        "quick": args.quick,
        "bench_minutes": (time.perf_counter() - t_start) / 60,
        "machine": machine(str(device)),
        "command": " ".join(["python", "bench/avatar_gpu.py", *(argv if argv is not None else sys.argv[1:])]),
    }
    write_result(args.out, result)

    print(f"{'fps':>12} {'trained':>7} {'PSNR':>6} " + " ".join(f"{t:>13}" for t in tags))
    for name in MODELS:
        cells = " ".join(f"{fps[name][t]:13.1f}" for t in tags)
        print(f"{name:>12} {'yes' if trained[name] else 'no':>7} {psnr[name]:6.2f} {cells}")
    ratios = ", ".join(f"{t} {result[f'speedup_vs_big_mlp_{t}']:.1f}x" for t in tags)
    print(f"avatar vs big MLP (fps ratio): {ratios}")
    print(f"frames per second on {device} ({machine(str(device)).get('gpu', 'cpu')}); wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
