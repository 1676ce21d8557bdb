"""Benchmark distilled students against their teacher, all in one run on the same machine and batch.

The teacher (DPM-Solver++, guidance 4) samples at 50/25/10/4/1 steps; the DMD and VSD students at 1 step
(and at every step count they were trained for, up to 4); the DMD student also with the teacher's KL VAE
in place of its shipped decoder. Each row: FD against real procedural images in the oracle's feature space
(which ignores the background) and in the whole-image space (``genkit.metrics.whole_image``), the rate of
images with patches of another grey in their background, prompt accuracy on seen and held-out attribute
combinations, diversity (mean pairwise oracle-feature distance among the images of one prompt, across
seeds), and images per second (wall clock of the whole pipeline call: text encoding, denoiser calls, VAE
decoding; same batch for every row). A row of real procedural images gives the floor of each measure.
Ratios are against the teacher at 50 steps, measured in the same run.

    python bench/distill.py            # 4 images per prompt: 160 seen x 4 + 40 held-out x 4 per row
    python bench/distill.py --quick    # 2 images per prompt on 64 seen and all 40 held-out prompts

Writes bench/results/distill.json (and distill_grid.png: same prompts and seeds for every row), prints a
table.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _common import machine, write_result  # bench/ is on sys.path when run as a script
from diffusers import AutoModel

from genkit.data.shapes import ShapesDataset, prompt_set
from genkit.loading import load_pipeline, resolve_device, resolve_model
from genkit.metrics.evaluate import generate_images, load_oracle, real_features, score_images
from genkit.utils import image_grid

RESULTS = Path(__file__).parent / "results" / "distill.json"
GRID_PROMPTS = [
    "a small red circle at the top left",
    "a large blue square in the center",
    "a small yellow triangle at the bottom right",
    "a large green cross at the top right",
    "a large red cross at the bottom left",  # held-out combination
]


def evaluate(pipe, steps, guidance, seen, held, per_prompt, oracle, ref, batch):
    row = {}
    for name, prompts, split in (("seen", seen, "train"), ("heldout", held, "heldout")):
        gen = generate_images(pipe, prompts, per_prompt, steps, guidance, seed=0, batch_size=batch)
        images, all_prompts, secs = gen
        r = score_images(images, all_prompts, oracle, ref[split])
        r["images_per_second"] = len(all_prompts) / secs
        row[name] = r
    return row


def real_row(seen, held, per_prompt, oracle, ref):
    """The measures of real procedural images (another seed than the reference), as many as a row has."""
    row = {}
    for name, prompts, split in (("seen", seen, "train"), ("heldout", held, "heldout")):
        batch = ShapesDataset(len(prompts) * per_prompt, 32, seed=999, split=split).batch(
            range(len(prompts) * per_prompt)
        )
        row[name] = score_images(batch["pixel_values"], batch["caption"], oracle, ref[split])
        row[name]["images_per_second"] = float("nan")
    return row


def grid_row(pipe, steps, guidance, n=4) -> np.ndarray:
    images, _, _ = generate_images(pipe, GRID_PROMPTS, n, steps, guidance, seed=100)
    return ((images.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer prompts and images (a few minutes)")
    ap.add_argument("--teacher", default="text2img-shapes", help="bundled name or pipeline folder")
    ap.add_argument("--dmd", default="student-shapes", help="DMD student folder (or bundled name)")
    ap.add_argument("--vsd", default="student-vsd-shapes", help="VSD student folder (or bundled name)")
    ap.add_argument(
        "--decoders",
        nargs="*",
        default=[],
        help="more decoder folders (genkit train tiny-decoder) to evaluate the DMD student with",
    )
    ap.add_argument("--teacher-steps", type=int, nargs="+", default=[50, 25, 10, 4, 1])
    ap.add_argument("--guidance", type=float, default=4.0)
    ap.add_argument("--batch", type=int, default=64, help="images per pipeline call, every row")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)

    device = resolve_device(args.device)
    torch.manual_seed(0)
    per_prompt = 2 if args.quick else 4
    seen = prompt_set("train", 64 if args.quick else None)
    held = prompt_set("heldout")
    oracle = load_oracle(None, device)
    ref = {s: real_features(oracle, s, 2000) for s in ("train", "heldout")}
    t0 = time.perf_counter()

    rows, grid = {"real": real_row(seen, held, per_prompt, oracle, ref)}, []
    teacher = load_pipeline(args.teacher, "dpm", device)
    for steps in args.teacher_steps:
        rows[f"teacher_{steps}"] = evaluate(
            teacher, steps, args.guidance, seen, held, per_prompt, oracle, ref, args.batch
        )
        grid.append(grid_row(teacher, steps, args.guidance))
        print(f"  teacher {steps} steps done ({time.perf_counter() - t0:.0f}s)", file=sys.stderr)
    students = {}
    for method in ("dmd", "vsd"):
        path = resolve_model(getattr(args, method))
        pipe = load_pipeline(str(path), None, device)
        info = json.loads((path / "distill.json").read_text()) if (path / "distill.json").is_file() else {}
        trained = len(pipe.config.student_timesteps)
        students[method] = {"path": str(path), "info": info, "steps": sorted({1, trained})}
        for steps in students[method]["steps"]:
            rows[f"{method}_{steps}"] = evaluate(
                pipe, steps, 1.0, seen, held, per_prompt, oracle, ref, args.batch
            )
            grid.append(grid_row(pipe, steps, 1.0))
            print(f"  {method} {steps} step(s) done ({time.perf_counter() - t0:.0f}s)", file=sys.stderr)
        if (
            method == "dmd"
        ):  # the decoder's share: the same denoiser with the teacher's VAE and other decoders
            shipped = pipe.vae
            for name, vae in [("kl_vae", teacher.vae)] + [
                (Path(d).parent.name, AutoModel.from_pretrained(d)) for d in args.decoders
            ]:
                pipe.vae = vae.to(device)
                rows[f"dmd_1_{name}"] = evaluate(
                    pipe, 1, 1.0, seen, held, per_prompt, oracle, ref, args.batch
                )
                print(f"  dmd with {name} done ({time.perf_counter() - t0:.0f}s)", file=sys.stderr)
            pipe.vae = shipped

    ref50 = rows[f"teacher_{max(args.teacher_steps)}"]
    result: dict = {}
    for method, s in students.items():
        r = rows[f"{method}_1"]
        result[method] = {
            "speedup_vs_teacher50": r["seen"]["images_per_second"] / ref50["seen"]["images_per_second"],
            "fd_ratio_vs_teacher50": r["seen"]["fd"] / ref50["seen"]["fd"],
            "fd_ratio_heldout_vs_teacher50": r["heldout"]["fd"] / ref50["heldout"]["fd"],
            "fd_whole_ratio_vs_teacher50": r["seen"]["fd_whole"] / ref50["seen"]["fd_whole"],
            "artifact_rate": (
                r["seen"]["artifact_rate"] * len(seen) + r["heldout"]["artifact_rate"] * len(held)
            )
            / (len(seen) + len(held)),
            "artifact_rate_teacher50": (
                ref50["seen"]["artifact_rate"] * len(seen) + ref50["heldout"]["artifact_rate"] * len(held)
            )
            / (len(seen) + len(held)),
            "prompt_accuracy_delta": r["seen"]["prompt_accuracy"] - ref50["seen"]["prompt_accuracy"],
            "prompt_accuracy_delta_heldout": r["heldout"]["prompt_accuracy"]
            - ref50["heldout"]["prompt_accuracy"],
            "diversity_ratio": r["seen"]["diversity"] / ref50["seen"]["diversity"],
            "train_minutes": s["info"].get("train_minutes_this_run"),
            "train_steps": s["info"].get("steps_this_run"),
            "fake_updates_per_step": s["info"].get("fake_updates"),
            "student_steps_trained": s["steps"][-1],
            "path": s["path"],
        }
    result["rows"] = rows
    result["config"] = {**vars(args), "images_per_prompt": per_prompt, "seen_prompts": len(seen)}
    result["machine"] = machine(device)
    result["seconds"] = time.perf_counter() - t0

    print(
        f"{'row':>13} {'FD seen':>8} {'FD held':>8} {'FDw seen':>9} {'artifacts':>9} {'acc seen':>9} "
        f"{'acc held':>9} {'divers':>7} {'img/s':>8}"
    )
    for name, row in rows.items():
        s, h = row["seen"], row["heldout"]
        artifacts = (s["artifact_rate"] * len(seen) + h["artifact_rate"] * len(held)) / (
            len(seen) + len(held)
        )
        print(
            f"{name:>13} {s['fd']:>8.2f} {h['fd']:>8.2f} {s['fd_whole']:>9.2f} {artifacts:>9.3f} "
            f"{s['prompt_accuracy']:>9.3f} {h['prompt_accuracy']:>9.3f} {s['diversity']:>7.2f} "
            f"{s['images_per_second']:>8.1f}"
        )
    for method, r in result.items():
        if method in students:
            print(
                f"{method}: speedup {r['speedup_vs_teacher50']:.1f}x, FD ratio {r['fd_ratio_vs_teacher50']:.2f}, "
                f"whole-image FD ratio {r['fd_whole_ratio_vs_teacher50']:.2f}, artifact rate "
                f"{r['artifact_rate']:.3f} (teacher {r['artifact_rate_teacher50']:.3f}), "
                f"accuracy delta {r['prompt_accuracy_delta']:+.3f}, diversity ratio {r['diversity_ratio']:.2f}"
            )
    import imageio.v3 as iio

    grid_path = Path(args.out).with_name(Path(args.out).stem + "_grid.png")
    iio.imwrite(grid_path, image_grid(np.concatenate(grid), rows=len(grid), scale=2))
    grid_rows = [k for k in rows if k != "real" and not k.startswith("dmd_1_")]
    print(f"wrote {grid_path} (rows: {', '.join(grid_rows)})")
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
