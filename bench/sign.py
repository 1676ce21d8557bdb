"""Sign-avatar motion: the text-to-motion model and its score distillation against real procedural motion
and a mismatched control, in one run.

Rows, each over seen sentences (training split) and held-out sentences (new compositions of known signs):
- ``real``: jittered procedural motions of the sentences (the ceiling of every metric),
- ``mismatched``: the same real motions scored against the wrong sentences (R-precision and
  back-translation at chance: the control every generator must beat),
- ``diffusion``: the motion model (``--model``, the bundled ``sign-motion``), 20 DPM-Solver++ steps,
  guidance 2.5, batched,
- ``sds``: the same model distilled into Bezier motion curves (``genkit sign --method sds``: 400 steps,
  guidance 7.5) for the first few sentences of each split (one optimisation per sentence).

Metrics (``genkit.metrics.sign``, an evaluator trained from scratch by ``genkit train sign-evaluator``):
R-precision top-1/2/3 (32 candidates), FID of motion embeddings against an independent real set,
diversity, back-translation accuracy (each sign's window read by the sign classifier), MPJPE and DTW-MJE
in mm against the canonical motion of each sentence (body root-relative, hands wrist-relative), seconds per
sentence on this machine.

    python bench/sign.py [--quick]   ->  bench/results/sign.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, write_result  # noqa: E402

from genkit.data.signs import FPS, sentence_motion, sentences, to_features  # noqa: E402
from genkit.loading import resolve_device  # noqa: E402
from genkit.metrics.scores import frechet_distance  # noqa: E402
from genkit.metrics.sign import (  # noqa: E402
    back_translation,
    canonical_motions,
    diversity,
    dtw_mje,
    evaluator_inputs,
    load_sign_evaluator,
    mpjpe,
    r_precision,
)
from genkit.pipelines.sign.motion_sds import distill_motion  # noqa: E402
from genkit.pipelines.sign.system import load_sign_pipeline  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "sign.json"


def real_motions(captions: list[str], seed: int) -> torch.Tensor:
    """Jittered procedural motion of each sentence (item i seeded by (seed, i))."""
    return torch.stack(
        [
            to_features(*sentence_motion(tuple(c.split()), np.random.default_rng([seed, i])))
            for i, c in enumerate(captions)
        ]
    )


def score(evaluator, motion: torch.Tensor, captions: list[str], reference: torch.Tensor) -> dict:
    with torch.no_grad():
        inputs = evaluator_inputs(motion)
        emb = evaluator.embed_motion(inputs.to(evaluator.device)).cpu()
        truth = canonical_motions(captions)
        top = r_precision(evaluator, emb, captions)
        return {
            "r_precision_top1": top[0],
            "r_precision_top3": top[2],
            "fid": frechet_distance(reference, emb) if len(emb) > 16 else None,
            "diversity": diversity(emb),
            "back_translation": back_translation(evaluator, inputs.to(evaluator.device), captions),
            "mpjpe_mm": mpjpe(motion, truth),
            "dtw_mje_mm": dtw_mje(motion, truth),
        }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer sentences (a few minutes)")
    ap.add_argument("--model", default="sign-motion", help="bundled sign model or a genkit train sign folder")
    ap.add_argument("--evaluator", default=None, help="sign evaluator folder (default: bundled)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--guidance", type=float, default=2.5)
    ap.add_argument("--sds-steps", type=int, default=400)
    ap.add_argument(
        "--sds-sentences", type=int, default=0, help="sentences per split for SDS (0: 6 quick, 16 full)"
    )
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)

    device = resolve_device(args.device)
    n = 64 if args.quick else 256
    g = np.random.default_rng(0)
    split_sentences = {}
    for split in ("seen", "heldout"):
        pool = sentences("train" if split == "seen" else "heldout")
        split_sentences[split] = [" ".join(pool[i]) for i in g.choice(len(pool), n, replace=False)]
    n_sds = args.sds_sentences or (6 if args.quick else 16)
    evaluator = load_sign_evaluator(args.evaluator, device)
    with torch.no_grad():
        ref_caps = [" ".join(s) for s in sentences("all")]
        ref_caps = [ref_caps[i] for i in g.choice(len(ref_caps), 512, replace=False)]
        reference = evaluator.embed_motion(evaluator_inputs(real_motions(ref_caps, 4242)).to(device)).cpu()
    pipe = load_sign_pipeline(args.model, device)
    t0 = time.perf_counter()

    rows: dict[str, dict] = {"real": {}, "mismatched": {}, "diffusion": {}, "sds": {}}
    for split, caps in split_sentences.items():
        real = real_motions(caps, 777)
        rows["real"][split] = score(evaluator, real, caps, reference)
        shuffled = [caps[(i + 1) % len(caps)] for i in range(len(caps))]
        rows["mismatched"][split] = score(evaluator, real, shuffled, reference)

        t1 = time.perf_counter()
        out = []
        for i in range(0, len(caps), 32):
            gen = torch.Generator(device).manual_seed(1000 + i)
            out.append(pipe(caps[i : i + 32], args.steps, args.guidance, generator=gen).motion.cpu())
        spc = (time.perf_counter() - t1) / len(caps)
        rows["diffusion"][split] = {
            **score(evaluator, torch.cat(out), caps, reference),
            "seconds_per_sentence": spc,
        }

        t1 = time.perf_counter()
        sds = torch.stack(
            [
                distill_motion(pipe, c, args.sds_steps, seed=k, progress=False).cpu()
                for k, c in enumerate(caps[:n_sds])
            ]
        )
        spc = (time.perf_counter() - t1) / n_sds
        rows["sds"][split] = {**score(evaluator, sds, caps[:n_sds], reference), "seconds_per_sentence": spc}
        print(f"  {split} done ({time.perf_counter() - t0:.0f}s)", file=sys.stderr)

    d, r = rows["diffusion"], rows["real"]
    result = {
        "targets": {
            "r_precision_top3_vs_real_seen>=0.8": d["seen"]["r_precision_top3"]
            / r["seen"]["r_precision_top3"],
            "r_precision_top3_vs_real_heldout>=0.8": d["heldout"]["r_precision_top3"]
            / r["heldout"]["r_precision_top3"],
            "back_translation_seen>=0.8": d["seen"]["back_translation"],
            "back_translation_heldout>=0.8": d["heldout"]["back_translation"],
            "fid_seen": d["seen"]["fid"],
            "fid_real_seen": r["seen"]["fid"],
            "seconds_per_sentence": d["seen"]["seconds_per_sentence"],
            "sds_seconds_per_sentence": rows["sds"]["seen"]["seconds_per_sentence"],
        },
        "rows": rows,
        "config": {**vars(args), "sentences_per_split": n, "sds_sentences": n_sds, "fps": FPS},
        "machine": machine(device),
        "seconds": time.perf_counter() - t0,
    }
    print(
        f"{'row':>10} {'split':>8} {'R@1':>6} {'R@3':>6} {'FID':>7} {'div':>6} {'BT acc':>7} {'MPJPE b/h mm':>14} {'DTW b/h mm':>14} {'s/sent':>7}"
    )
    for name, row in rows.items():
        for split, x in row.items():
            fid_s = f"{x['fid']:.3f}" if x["fid"] is not None else "-"
            sps = f"{x['seconds_per_sentence']:.2f}" if "seconds_per_sentence" in x else "-"
            print(
                f"{name:>10} {split:>8} {x['r_precision_top1']:>6.3f} {x['r_precision_top3']:>6.3f} {fid_s:>7} "
                f"{x['diversity']:>6.3f} {x['back_translation']:>7.3f} "
                f"{x['mpjpe_mm']['body']:>6.1f}/{x['mpjpe_mm']['hands']:<7.1f} "
                f"{x['dtw_mje_mm']['body']:>6.1f}/{x['dtw_mje_mm']['hands']:<7.1f} {sps:>7}"
            )
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
