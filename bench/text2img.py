"""Benchmark the bundled text-to-image model at 10/25/50 steps.

Reports, per step count: prompt accuracy on seen and held-out attribute combinations, FD / precision /
recall against real procedural images in the oracle's feature space, FD in the whole-image space and the
rate of images with patches of another grey in their background (``genkit.metrics.whole_image``: the
oracle ignores the background), the share of each background grey, diversity, and images per second on
this machine. The baseline,
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
    ap.add_argument(
        "--guidance-sweep",
        type=float,
        nargs="*",
        default=[1.5, 2.5],
        help="other guidance scales, at 25 steps (the background greys depend on it)",
    )
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

    def measure(steps: int, guidance: float) -> dict:
        out = {}
        for name, split, k in (("seen", "train", n_seen), ("heldout", "heldout", n_held)):
            images, prompts, secs = generate_images(pipe, prompt_set(split), k, steps, guidance, seed=0)
            out[name] = score_images(images, prompts, oracle, ref[split])
            out[name]["images_per_second"] = len(prompts) / secs
        print(f"  {steps} steps, guidance {guidance} done ({time.perf_counter() - t0:.0f}s)", file=sys.stderr)
        return out

    rows = {steps: measure(steps, args.guidance) for steps in args.steps}
    sweep = {guidance: measure(25, guidance) for guidance in args.guidance_sweep}

    result: dict = {}
    for steps, row in rows.items():
        result[f"prompt_accuracy_seen_{steps}"] = row["seen"]["prompt_accuracy"]
        result[f"prompt_accuracy_heldout_{steps}"] = row["heldout"]["prompt_accuracy"]
        result[f"fd_{steps}"] = row["seen"]["fd"]
        result[f"fd_heldout_{steps}"] = row["heldout"]["fd"]
        result[f"fd_whole_{steps}"] = row["seen"]["fd_whole"]
        result[f"artifact_rate_{steps}"] = row["seen"]["artifact_rate"]
        result[f"images_per_second_{steps}"] = row["seen"]["images_per_second"]
        result[f"accuracy_ratio_vs_real_seen_{steps}"] = (
            row["seen"]["prompt_accuracy"] / baseline["seen"]["prompt_accuracy"]
        )
    result.update(
        {
            "baseline_real": baseline,
            "rows": {str(s): r for s, r in rows.items()},
            "guidance_sweep_25_steps": {str(g): r for g, r in sweep.items()},
            "config": {
                **vars(args),
                "images_per_seen_prompt": n_seen,
                "images_per_heldout_prompt": n_held,
                "num_real": num_real,
            },
            "machine": machine(device),
        }
    )

    print(
        f"{'steps':>6} {'acc seen':>9} {'acc held':>9} {'FD seen':>8} {'FD held':>8} {'FDw seen':>9} "
        f"{'artifacts':>9} {'prec':>6} {'recall':>6} {'divers':>7} {'img/s':>7}  background greys 245/190/80/15"
    )
    named = [("real", baseline), *rows.items(), *((f"25 g{g:g}", r) for g, r in sweep.items())]
    for name, row in named:
        s, h = row["seen"], row["heldout"]
        tones = "/".join(f"{v:.2f}" for v in s["background_tones"].values())
        speed = f"{s['images_per_second']:>7.1f}" if "images_per_second" in s else f"{'-':>7}"
        print(
            f"{name!s:>6} {s['prompt_accuracy']:>9.3f} {h['prompt_accuracy']:>9.3f} {s['fd']:>8.2f} {h['fd']:>8.2f} "
            f"{s['fd_whole']:>9.2f} {s['artifact_rate']:>9.3f} {s['precision']:>6.3f} {s['recall']:>6.3f} "
            f"{s['diversity']:>7.2f} {speed}  {tones}"
        )
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
