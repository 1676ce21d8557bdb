"""Which inputs the avatar needs, by lighting: the vertex normals its MLP reads (``--normal-input``) and
the head pose its blend-weight CNN reads (``--pose-input``), on the procedural head lit by a light fixed in
the head frame (``genkit avatar data --light head``, the bench's and the shipped avatar's data) and by one
fixed in the world (``--light world``: the head pose changes the shading too), in one run.

Every variant trains as ``bench/avatar.py`` trains the avatar (``genkit avatar train``, 1000 steps, 8
training samples per ray, fp16 as shipped) for each seed, and is evaluated on the held-out expressions,
expressions beyond the training range and held-out views (PSNR and SSIM inside the head mask, 4 samples
per ray). The seeds change the initialisation and the training rays, not the data; a gap smaller than the
spread between seeds is a tie.

    python bench/avatar_inputs.py                 # 1000 steps, seeds 0 and 1
    python bench/avatar_inputs.py --reuse         # evaluate the models a previous run trained again
    python bench/avatar_inputs.py --quick         # 300 steps, seed 0

Writes bench/results/avatar_inputs.json and prints a table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _common import machine, write_result  # bench/ is on sys.path when run as a script
from avatar import SPLITS, quality, train_or_reuse

from genkit.render.avatar import load_head_split, make_head_dataset

RESULTS = Path(__file__).parent / "results" / "avatar_inputs.json"
# light -> the avatar variants trained on it: name -> HashBlendshapeAvatar options
VARIANTS = {
    "head": {
        "normals_head": {"normal_input": "head"},  # what --normal-input auto picks here
        "normals_head+pose": {"normal_input": "head", "pose_input": True},
    },
    "world": {
        "no_normals": {"normal_input": "none"},  # the paper's MLP input
        "normals_head": {"normal_input": "head"},
        "normals_world": {"normal_input": "world"},  # what --normal-input auto picks here
        "normals_world+pose": {"normal_input": "world", "pose_input": True},
    },
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="300 steps, seed 0 only")
    ap.add_argument("--steps", type=int, default=None, help="training steps (default 1000; quick 300)")
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="training seeds (default 0 1)")
    ap.add_argument("--runs", default="runs/bench-avatar-inputs", help="datasets and models go here")
    ap.add_argument("--reuse", action="store_true", help="evaluate models trained earlier in --runs")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    steps = args.steps or (300 if args.quick else 1000)
    seeds = args.seeds or ([0] if args.quick else [0, 1])
    torch.manual_seed(0)
    t_start = time.perf_counter()

    rows = {}
    for light, variants in VARIANTS.items():
        data_dir = f"{args.runs}/data-{light}"
        if not (Path(data_dir) / "meta.json").is_file():
            make_head_dataset(data_dir, 128, light=light)
        data = {s: load_head_split(data_dir, s) for s in SPLITS}
        for name, options in variants.items():
            runs = []
            for seed in seeds:
                out = f"{args.runs}/{light}/{name}/seed{seed}"
                model, minutes = train_or_reuse(data_dir, out, "avatar", options, steps, 8, args.reuse, seed)
                q, _ = quality(model, data, 4)
                runs.append({"seed": seed, "quality": q, "train_minutes": minutes})
                print(
                    f"  light {light}, {name}, seed {seed}: PSNR expr {q['test_expr']['psnr']:.2f} dB",
                    file=sys.stderr,
                )
            mean = {
                s: {m: float(np.mean([r["quality"][s][m] for r in runs])) for m in ("psnr", "ssim")}
                for s in SPLITS
            }
            spread = {s: float(np.ptp([r["quality"][s]["psnr"] for r in runs])) for s in SPLITS}
            rows[f"{light}/{name}"] = {
                "light": light,
                "options": options,
                "mean": mean,
                "psnr_seed_spread": spread,
                "runs": runs,
            }

    result = {
        "variants": rows,
        "seeds": seeds,
        "train_steps": steps,
        "quick": args.quick,
        "bench_minutes": (time.perf_counter() - t_start) / 60,
        "machine": machine("cpu"),
        "command": " ".join(
            ["python", "bench/avatar_inputs.py", *(argv if argv is not None else sys.argv[1:])]
        ),
    }
    write_result(args.out, result)

    print(f"PSNR (dB) inside the head mask, mean of seeds {seeds} (spread between seeds in brackets)")
    print(f"{'light':>6} {'variant':>20} {'expr':>13} {'extreme':>13} {'view':>13} {'SSIM expr':>9}")
    for key, r in rows.items():
        cells = " ".join(f"{r['mean'][s]['psnr']:6.2f} ({r['psnr_seed_spread'][s]:4.2f})" for s in SPLITS)
        print(f"{r['light']:>6} {key.split('/')[1]:>20} {cells} {r['mean']['test_expr']['ssim']:9.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
