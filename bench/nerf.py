"""Benchmark the neural-field renderer on the real lego scene (100x100, 88 train / 12 test views).

One run: train a hash-grid field with occupancy-grid sampling (``genkit nerf train``'s loop) for a fixed
number of steps, recording the training curve; then, on the same trained field, render the test views with
occupancy-grid sampling and with uniform sampling (the baseline: every step through the box, same step
size): PSNR, SSIM (own implementation, 11x11 Gaussian window), samples per ray and milliseconds per
frame; and the largest difference between the torch and Triton backends (hash grid and march) on random
inputs (CPU: Triton's interpreter, so only parity is meaningful there, not its speed).

    python bench/nerf.py            # 1500 steps, all 12 test views (uniform: 4 views)
    python bench/nerf.py --quick    # 1500 steps, 4 test views (uniform: 2 views)

Writes bench/results/nerf.json, bench/results/nerf_turntable.gif and prints a table.
"""

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from _common import machine, write_result  # bench/ is on sys.path when run as a script

from genkit.metrics.image import psnr, ssim
from genkit.render.estimators import uniform_sampling
from genkit.render.geometry import camera_rays, orbit_poses
from genkit.render.nerf import NerfTrainConfig, load_field, load_scene, render_image, train_nerf
from genkit.render.volume import rendering
from genkit.utils import write_video

if not torch.cuda.is_available():  # Triton kernels run under the interpreter, for the parity figures
    os.environ.setdefault("TRITON_INTERPRET", "1")

RESULTS = Path(__file__).parent / "results" / "nerf.json"
LEGO = Path(__file__).resolve().parents[2] / "shared" / "data" / "lego_100"


@torch.no_grad()
def render_uniform(field_, c2w, focal, w, h, cfg, chunk=2048):
    o, d = camera_rays(c2w, focal, w, h)
    colours, count = [], 0
    for i in range(0, len(o), chunk):
        oo, dd = o[i : i + chunk], d[i : i + chunk]
        rays, t0, t1 = uniform_sampling(oo, dd, field_.aabb, cfg.step_size)

        def rgb_sigma_fn(a, b, r, oo=oo, dd=dd):
            return field_(oo[r] + dd[r] * ((a + b) / 2)[:, None], dd[r])

        colour, _, _, _ = rendering(t0, t1, rays, len(oo), rgb_sigma_fn, background=torch.ones(3))
        colours.append(colour)
        count += rays.numel()
    return torch.cat(colours).reshape(h, w, 3).clamp(0, 1), count / (w * h)


def backend_diff() -> dict:
    from genkit.render.encodings import HashGridEncoding
    from genkit.render.estimators import OccGridEstimator

    try:
        import triton  # noqa: F401
    except ImportError:
        return {"available": False}
    torch.manual_seed(0)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    enc = HashGridEncoding(
        levels=8, log2_table_size=12, base_resolution=4, max_resolution=256, init_scale=1.0
    ).to(dev)
    x = torch.rand(4096, 3, device=dev)
    ref = enc._forward_torch(x)
    enc.backend = "triton"
    hash_diff = (enc(x) - ref).abs().max().item()
    est = OccGridEstimator([-1.0, -1, -1, 1, 1, 1], resolution=32).to(dev)
    est.update_every_n_steps(0, lambda p: (p.norm(dim=-1) < 0.6).float(), occ_thre=0.5, n=1)
    o = F.normalize(torch.randn(512, 3), dim=-1).to(dev) * 3
    d = F.normalize(torch.rand(512, 3, device=dev) * 0.8 - 0.4 - o, dim=-1)
    est.backend = "torch"
    a = est.sampling(o, d, render_step_size=0.01)
    est.backend = "triton"
    b = est.sampling(o, d, render_step_size=0.01)
    same = all(u.shape == v.shape for u, v in zip(a, b, strict=True))
    march_diff = (
        max((u.float() - v.float()).abs().max().item() for u, v in zip(a, b, strict=True))
        if same
        else math.inf
    )
    return {
        "available": True,
        "hashgrid_max_abs_diff": hash_diff,
        "march_max_abs_diff": march_diff,
        "device": dev,
        "interpreted": os.environ.get("TRITON_INTERPRET") == "1",
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--data", default=str(LEGO))
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--run", default="runs/bench_nerf", help="training run folder (reused if complete)")
    args = ap.parse_args(argv)
    steps = args.steps or 1500
    views, uniform_views = (4, 2) if args.quick else (12, 4)

    t0 = time.perf_counter()
    cfg = NerfTrainConfig(data=args.data, out=args.run, max_train_steps=steps, eval_views=0)
    train_nerf(cfg)
    report = json.loads((Path(args.run) / "report.json").read_text())
    field_, est, cfg = load_field(args.run)
    test = load_scene(args.data, "test")
    idx = np.linspace(0, len(test) - 1, views).round().astype(int)
    occ, uni = [], []
    for k, i in enumerate(idx):
        t = time.perf_counter()
        img, spr = render_image(field_, est, test.c2w[i], test.focal, test.width, test.height, cfg)
        occ.append(
            {
                "view": int(i),
                "psnr": psnr(img, test.images[i]),
                "ssim": ssim(img, test.images[i]),
                "samples_per_ray": spr,
                "ms": 1000 * (time.perf_counter() - t),
            }
        )
        if k < uniform_views:
            t = time.perf_counter()
            img_u, spr_u = render_uniform(field_, test.c2w[i], test.focal, test.width, test.height, cfg)
            uni.append(
                {
                    "view": int(i),
                    "psnr": psnr(img_u, test.images[i]),
                    "ssim": ssim(img_u, test.images[i]),
                    "samples_per_ray": spr_u,
                    "ms": 1000 * (time.perf_counter() - t),
                }
            )
        print(f"  view {i}: {occ[-1]['psnr']:.2f} dB ({time.perf_counter() - t0:.0f}s)", file=sys.stderr)
    paired = occ[: len(uni)]

    def mean(rows, key):
        return float(np.mean([r[key] for r in rows]))

    curve = report["curve"]
    reach = {db: next((c["seconds"] / 60 for c in curve if c["train_psnr"] >= db), None) for db in (20, 25)}
    result = {
        "test_psnr": mean(occ, "psnr"),
        "test_ssim": mean(occ, "ssim"),
        "train_minutes": report["train_minutes_this_run"],
        "train_steps": steps,
        "minutes_to_train_psnr_20": reach[20],
        "minutes_to_train_psnr_25": reach[25],
        "samples_per_ray_occupancy": mean(paired, "samples_per_ray"),
        "samples_per_ray_uniform": mean(uni, "samples_per_ray"),
        "samples_per_ray_ratio": mean(uni, "samples_per_ray") / mean(paired, "samples_per_ray"),
        "render_ms_occupancy": mean(paired, "ms"),
        "render_ms_uniform": mean(uni, "ms"),
        "render_speedup": mean(uni, "ms") / mean(paired, "ms"),
        "psnr_occupancy_paired": mean(paired, "psnr"),
        "psnr_uniform": mean(uni, "psnr"),
        "psnr_gap_db": mean(uni, "psnr") - mean(paired, "psnr"),
        "backends": backend_diff(),
        "views_occupancy": occ,
        "views_uniform": uni,
        "curve": curve,
        "config": {**vars(args), "steps": steps, "train_config": cfg.__dict__},
        "machine": machine("cuda" if torch.cuda.is_available() else "cpu"),
    }
    b = result["backends"]
    result["backend_max_abs_diff"] = (
        max(b["hashgrid_max_abs_diff"], b["march_max_abs_diff"]) if b.get("available") else None
    )

    frames = []
    for c2w in orbit_poses(24, 4.0, 30.0):
        img, _ = render_image(field_, est, c2w, test.focal, test.width, test.height, cfg)
        frames.append((img.numpy() * 255).round().astype(np.uint8))
    gif = Path(args.out).with_name("nerf_turntable.gif")
    write_video(gif, frames, 12)
    result["seconds"] = time.perf_counter() - t0

    print(f"{'':>22} {'occupancy':>10} {'uniform':>10} {'ratio':>7}")
    print(
        f"{'samples per ray':>22} {result['samples_per_ray_occupancy']:>10.1f} {result['samples_per_ray_uniform']:>10.1f} "
        f"{result['samples_per_ray_ratio']:>7.2f}"
    )
    print(
        f"{'ms per frame':>22} {result['render_ms_occupancy']:>10.0f} {result['render_ms_uniform']:>10.0f} "
        f"{result['render_speedup']:>7.2f}"
    )
    print(
        f"{'PSNR (same views)':>22} {result['psnr_occupancy_paired']:>10.2f} {result['psnr_uniform']:>10.2f} "
        f"{result['psnr_gap_db']:>+7.2f}"
    )
    print(
        f"test PSNR {result['test_psnr']:.2f} dB, SSIM {result['test_ssim']:.3f} over {views} views after "
        f"{steps} steps ({result['train_minutes']:.1f} min); backends max |diff| {result['backend_max_abs_diff']}"
    )
    print(f"wrote {gif}")
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
