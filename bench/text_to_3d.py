"""Text-to-3D by score distillation: SDS against VSD on the embedded view prior, and the exact objects, in
one run.

For each prompt of a fixed set (seen colour-shape pairs and a held-out one) and each method, ``genkit
text-to-3d`` optimises an object, and for the open prompts (a shape whose colour the prompt leaves open,
"a cube": the view prior was trained with a quarter of its captions naming no colour, so the prompt has a
distribution of colours) three objects optimised together (``--particles 3``: with VSD they share the
LoRA fake score, as ProlificDreamer's particles; with SDS they are independent); then every object is
measured against the exact procedural object (``genkit.data.objects3d``):
- ``silhouette_iou``: rendered opacity vs the true silhouette on 16 held-out views (azimuths between the
  ones a turntable shows, elevation 20; the optimisation draws cameras at random),
- ``volume_iou``: the field's occupancy (density above the mesh threshold) vs the object's on a 64^3 grid,
- ``attribute_accuracy``: the share of the 16 views whose shape and colour (open prompts: shape) the 3-D
  views' classifier (``genkit train objects3d-classifier``, trained from scratch on the procedural views)
  reads as the prompt's; ``color_read``: the colour it reads in most views,
- ``janus_rate``: the share of 8 back views (azimuth 135-225) in which the classifier sees the front
  marker (``janus_rate_pixels``: the same by the analytic dark-blob detector),
- ``diversity`` (open prompts): mean pairwise RMS distance between the renders of the same views of the
  three particles, and ``colors``: how many different colours the classifier reads among them,
- ``minutes``: wall-clock minutes of the optimisation and the outputs (mesh, turntable) per object (a
  run of three particles counts as three objects).

The ``exact`` row is the procedural object itself through the same metrics (the classifier's ceiling,
Janus 0; for an open prompt, the object in three different colours gives the diversity of a sample that
keeps the distribution). Renders of every object are written next to the result for looking at.

    python bench/text_to_3d.py [--quick]   ->  bench/results/text_to_3d.json
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, write_result  # noqa: E402

from genkit.data.objects3d import COLORS3D, Object3D, render_views  # noqa: E402
from genkit.loading import resolve_device  # noqa: E402
from genkit.metrics.objects3d import (  # noqa: E402
    attribute_accuracy,
    color_read,
    diversity,
    janus_rate,
    load_objects3d_classifier,
    marker_visible,
    silhouette_iou,
    volume_iou,
)
from genkit.pipelines.text_to_3d import TextTo3DConfig, load_object_field, render_field, text_to_3d  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "text_to_3d.json"
PROMPTS = [
    "a red cube",
    "a blue sphere",
    "a yellow cylinder",
    "a purple cone",
    "a red torus",
]  # last held out
OPEN_PROMPTS = ["a cube", "a sphere"]  # the colour left open: the diversity prompts
QUICK_PROMPTS, QUICK_OPEN_PROMPTS = ["a red torus"], ["a cube"]
PARTICLES = 3  # objects per open prompt, optimised together
VIEWS = torch.tensor([[11.25 + 22.5 * k, 20.0] for k in range(16)])


def parse(prompt: str) -> tuple[Object3D, bool]:
    """(the object, whether the prompt names its colour); an open prompt's object has the first colour,
    which only its geometry and shape are measured by."""
    words = prompt.split()
    if len(words) == 2:
        return Object3D(next(iter(COLORS3D)), words[1]), False
    return Object3D(words[1], words[2]), True


def measure(
    render, density, obj: Object3D, classifier, threshold: float, color: bool = True
) -> tuple[dict, torch.Tensor]:
    """(metrics, images of ``VIEWS``); each set of cameras is rendered once (the metrics share renders)."""
    cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def once(cams: torch.Tensor):
        key = tuple(cams.flatten().tolist())
        if key not in cache:
            cache[key] = render(cams)
        return cache[key]

    with torch.no_grad():
        images, _ = once(VIEWS)
        metrics = {
            "silhouette_iou": silhouette_iou(once, obj, VIEWS),
            "volume_iou": volume_iou(density, obj, threshold) if density is not None else 1.0,
            "attribute_accuracy": attribute_accuracy(classifier, images, obj, color),
            "color_read": color_read(classifier, images),
            "janus_rate": janus_rate(once, shows_marker=classifier.shows_marker),
            "janus_rate_pixels": janus_rate(once, shows_marker=marker_visible),
        }
    return metrics, images.cpu()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--quick",
        action="store_true",
        help="a red torus and 'a cube' x 3 particles, 600 steps (about 50 minutes)",
    )
    ap.add_argument("--prior", default="view-prior-objects", help="bundled view prior or a folder")
    ap.add_argument("--classifier", default=None, help="3-D views' classifier folder (default: bundled)")
    ap.add_argument("--steps", type=int, default=0, help="optimisation steps (0: 600 quick, 1200 full)")
    ap.add_argument("--methods", nargs="+", default=["sds", "vsd"], choices=["sds", "vsd"])
    ap.add_argument("--work", default="runs/bench-text-to-3d", help="folder of the optimised objects")
    ap.add_argument("--reuse", action="store_true", help="keep finished objects in --work (resume them)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)

    device = resolve_device(args.device)
    steps = args.steps or (600 if args.quick else 1200)
    named = QUICK_PROMPTS if args.quick else PROMPTS
    open_prompts = QUICK_OPEN_PROMPTS if args.quick else OPEN_PROMPTS
    prompts = named + open_prompts
    work = Path(args.work)
    if work.exists() and not args.reuse:
        shutil.rmtree(work)
    classifier = load_objects3d_classifier(args.classifier, device)
    t0 = time.perf_counter()

    rows: dict[str, dict] = {"exact": {}}
    sheets: dict[str, list[np.ndarray]] = {"exact": []}
    renders: dict[tuple[str, str, int], torch.Tensor] = {}
    for prompt in prompts:
        obj, color = parse(prompt)
        colours = list(COLORS3D)[:PARTICLES] if prompt in open_prompts else [obj.color]
        for k, c in enumerate(colours):
            solid = Object3D(c, obj.shape)

            def exact(cams, solid=solid):
                out = render_views(solid, cams[:, 0].tolist(), cams[:, 1].tolist(), 32)
                return out["image"], out["silhouette"]

            metrics, renders[("exact", prompt, k)] = measure(exact, None, obj, classifier, 0.0, color)
            if k == 0:
                rows["exact"][prompt] = {**metrics, "color_read": []}
            rows["exact"][prompt]["color_read"].append(metrics["color_read"])
            sheets["exact"].append(renders[("exact", prompt, k)][::2])

    for method in args.methods:
        rows[method], sheets[method] = {}, []
        for prompt in prompts:
            obj, color = parse(prompt)
            n = PARTICLES if prompt in open_prompts else 1
            folder = work / f"{method}-{prompt.replace(' ', '_')}"
            cfg = TextTo3DConfig(
                prompt=prompt,
                method=method,
                prior=args.prior,
                out=str(folder),
                max_train_steps=steps,
                anneal_steps=steps // 2,
                particles=n,
                device=args.device,
            )
            t1 = time.perf_counter()
            text_to_3d(cfg)
            minutes = (time.perf_counter() - t1) / 60 / n
            print(f"  {method} {prompt!r} x {n}: {minutes:.1f} min per object", file=sys.stderr)
            for k in range(n):
                field_ = load_object_field(folder if n == 1 else folder / f"particle-{k}").to(device)
                render = lambda c, f=field_: render_field(f, c.to(device), 32)  # noqa: E731
                metrics, renders[(method, prompt, k)] = measure(
                    render, field_.density, obj, classifier, cfg.mesh_threshold, color
                )
                if k == 0:
                    rows[method][prompt] = {**metrics, "minutes": minutes, "color_read": []}
                rows[method][prompt]["color_read"].append(metrics["color_read"])
                sheets[method].append(renders[(method, prompt, k)][::2])
    for method in rows:
        for prompt in open_prompts:
            r = rows[method][prompt]
            r["diversity"] = diversity([renders[(method, prompt, k)] for k in range(PARTICLES)])
            r["colors"] = len(set(r["color_read"]))

    def mean(method: str, key: str) -> float:
        vals = [r[key] for r in rows[method].values() if key in r]
        return float(np.mean(vals))

    summary = {
        m: {
            k: mean(m, k)
            for k in (
                "silhouette_iou",
                "volume_iou",
                "attribute_accuracy",
                "janus_rate",
                "janus_rate_pixels",
                "diversity",
                "colors",
                "minutes",
            )
            if any(k in r for r in rows[m].values())
        }
        for m in rows
    }
    result = {
        "targets": {
            m: {
                "silhouette_iou>=0.7": summary[m]["silhouette_iou"],
                "volume_iou>=0.6": summary[m]["volume_iou"],
                "attribute_accuracy>=0.9": summary[m]["attribute_accuracy"],
                "janus_rate": summary[m]["janus_rate"],
                "minutes_per_object<=15": summary[m]["minutes"],
            }
            for m in args.methods
        },
        "summary": summary,
        "rows": rows,
        "config": {
            **vars(args),
            "steps": steps,
            "prompts": named,
            "open_prompts": open_prompts,
            "particles": PARTICLES,
        },
        "machine": machine(device),
        "seconds": time.perf_counter() - t0,
    }
    if {"sds", "vsd"} <= set(args.methods):
        result["targets"]["vsd_diversity_over_sds>1"] = summary["vsd"]["diversity"] / max(
            summary["sds"]["diversity"], 1e-12
        )
        result["targets"]["colors_vsd_sds"] = [summary["vsd"]["colors"], summary["sds"]["colors"]]

    print(
        f"{'row':>6} {'prompt':>18} {'sil IoU':>8} {'vol IoU':>8} {'attr acc':>8} {'Janus':>6} {'div':>6} "
        f"{'colours':>7} {'min':>5}  colours read"
    )
    for m, row in rows.items():
        for prompt, r in row.items():
            div = f"{r['diversity']:.3f}" if "diversity" in r else "-"
            colours = str(r.get("colors", "-"))
            mins = f"{r['minutes']:.1f}" if "minutes" in r else "-"
            print(
                f"{m:>6} {prompt:>18} {r['silhouette_iou']:>8.3f} {r['volume_iou']:>8.3f} "
                f"{r['attribute_accuracy']:>8.3f} {r['janus_rate']:>6.2f} {div:>6} {colours:>7} {mins:>5}  "
                + " ".join(r["color_read"])
            )
    sheet = np.concatenate(
        [
            np.concatenate(
                [
                    (torch.cat(list(imgs), 2).permute(1, 2, 0).clamp(0, 1) * 255).byte().numpy()
                    for imgs in sheets[m]
                ],
                0,
            )
            for m in sheets
        ],
        0,
    )
    png = Path(args.out).with_name(Path(args.out).stem + "_views.png")
    png.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(png, np.kron(sheet, np.ones((2, 2, 1), dtype=np.uint8)))
    print(f"wrote {png} (rows: exact, then each method; per object 8 of the held-out views)")
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
