"""Benchmark the bundled text-to-image model at 10/25/50 steps.

Reports, per step count: prompt accuracy on seen and held-out attribute combinations, FD / precision /
recall against real procedural images, diversity, and images per second on this machine. The baseline,
measured in the same run, is real procedural data: the oracle's prompt accuracy on real images (the
ceiling of what the metric can say) and the FD between two independent real sets (the floor). Ratios
against it are reported too.

    python bench/text2img.py            # full: 4 images per prompt (640 seen, 160 held-out per step count)
    python bench/text2img.py --quick    # 2 images per prompt (320 seen, 80 held-out), a few minutes

Writes bench/results/text2img.json and prints a table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from _common import machine, write_result  # bench/ is on sys.path when run as a script

from genkit.data.shapes import ShapesDataset, prompt_set
from genkit.loading import load_pipeline, resolve_device
from genkit.metrics.evaluate import generate_images, load_oracle, real_features, score_images

RESULTS = Path(__file__).parent / "results" / "text2img.json"


def real_baseline(oracle, split: str, num: int, real_ref: torch.Tensor) -> dict:
    """Metrics of real images (another seed) drawn from the same prompts' combinations."""
    prompts = prompt_set(split)
    ds = ShapesDataset(num, oracle.config.resolution, seed=999, split=split)
    batch = ds.batch(range(num))
    return score_images(batch["pixel_values"], batch["caption"], oracle, real_ref) | {"prompts": len(prompts)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer images per prompt (a few minutes)")
    ap.add_argument("--model", default="text2img-shapes", help="bundled name or diffusers folder")
    ap.add_argument("--steps", type=int, nargs="+", default=[10, 25, 50])
    ap.add_argument("--scheduler", default="dpm", choices=["ddim", "dpm", "euler"])
    ap.add_argument("--guidance", type=float, default=4.0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)

    n_seen, n_held = (2, 2) if args.quick else (4, 4)
    device = resolve_device(args.device)
    torch.manual_seed(0)
    oracle = load_oracle(None, device)
    pipe = load_pipeline(args.model, args.scheduler, device)
    num_real = 2000
    ref = {s: real_features(oracle, s, num_real) for s in ("train", "heldout")}

    t0 = time.perf_counter()
    baseline = {
        "seen": real_baseline(oracle, "train", 160 * n_seen, ref["train"]),
        "heldout": real_baseline(oracle, "heldout", 40 * n_held, ref["heldout"]),
    }
    rows = {}
    for steps in args.steps:
        row = {}
        for name, split, k in (("seen", "train", n_seen), ("heldout", "heldout", n_held)):
            images, prompts, secs = generate_images(pipe, prompt_set(split), k, steps, args.guidance, seed=0)
            r = score_images(images, prompts, oracle, ref[split])
            r["images_per_second"] = len(prompts) / secs
            row[name] = r
        rows[steps] = row
        print(f"  {steps} steps done ({time.perf_counter() - t0:.0f}s)", file=sys.stderr)

    result: dict = {}
    for steps, row in rows.items():
        result[f"prompt_accuracy_seen_{steps}"] = row["seen"]["prompt_accuracy"]
        result[f"prompt_accuracy_heldout_{steps}"] = row["heldout"]["prompt_accuracy"]
        result[f"fd_{steps}"] = row["seen"]["fd"]
        result[f"fd_heldout_{steps}"] = row["heldout"]["fd"]
        result[f"images_per_second_{steps}"] = row["seen"]["images_per_second"]
        result[f"accuracy_ratio_vs_real_seen_{steps}"] = (
            row["seen"]["prompt_accuracy"] / baseline["seen"]["prompt_accuracy"]
        )
    result.update(
        {
            "baseline_real": baseline,
            "rows": {str(s): r for s, r in rows.items()},
            "config": {
                **vars(args),
                "images_per_seen_prompt": n_seen,
                "images_per_heldout_prompt": n_held,
                "num_real": num_real,
            },
            "machine": machine(device),
        }
    )

    hdr = f"{'steps':>6} {'acc seen':>9} {'acc held':>9} {'FD seen':>8} {'FD held':>8} {'prec':>6} {'recall':>6} {'divers':>7} {'img/s':>7}"
    print(hdr)
    b = baseline
    print(
        f"{'real':>6} {b['seen']['prompt_accuracy']:>9.3f} {b['heldout']['prompt_accuracy']:>9.3f} {b['seen']['fd']:>8.2f} "
        f"{b['heldout']['fd']:>8.2f} {b['seen']['precision']:>6.3f} {b['seen']['recall']:>6.3f} {b['seen']['diversity']:>7.2f} {'-':>7}"
    )
    for steps, row in rows.items():
        s, h = row["seen"], row["heldout"]
        print(
            f"{steps:>6} {s['prompt_accuracy']:>9.3f} {h['prompt_accuracy']:>9.3f} {s['fd']:>8.2f} {h['fd']:>8.2f} "
            f"{s['precision']:>6.3f} {s['recall']:>6.3f} {s['diversity']:>7.2f} {s['images_per_second']:>7.1f}"
        )
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
