"""FPDM against its DiT baseline: parameters, training memory and speed, and quality at equal sampling FLOPs.

Both models are genkit's bundled ``fpdm-shapes`` and ``dit-shapes`` (or folders given with --fpdm/--dit),
trained by the same ``genkit train fpdm`` loop on the same latents, prompts, optimiser and EMA (the shipped
pair with equal training FLOPs: FPDM 5500 steps, the DiT 2500). The
DiT baseline has the same blocks and width, and depth 14 = FPDM's 1 pre + 12 iterations + 1 post block
evaluations per step at its default budget. Everything below is measured in this run:

- ``params_ratio``: exact parameter counts, FPDM / DiT.
- ``train_memory_ratio``: per training step at the training batch, bytes autograd saves for backward
  (``saved_tensors_hooks``, distinct storages, parameters left out) plus weights, gradients and AdamW
  moments; FPDM with stochastic JFB at the largest graph-recording draw (the worst step), over DiT.
  Full backprop through the fixed point is reported for reference.
- training throughput (optimizer steps/s on this machine, FPDM's S-JFB draws as in training) and training
  compute: FLOPs of one training step (forward and backward, ``FlopCounterMode``, the mean over the S-JFB
  draws of 40 steps) times the steps each model was trained for (its ``training.json``, else
  ``--fpdm-train-steps`` / ``--dit-train-steps``): ``train_flops_ratio`` = FPDM's total / the DiT's.
- quality (FD in oracle feature space and prompt accuracy on the seen prompts, genkit.metrics) against
  sampling cost in true FLOPs per image (FlopCounterMode on the transformer, CFG included). A budget is
  what DiT spends in S steps. FPDM's headline configuration (``fd_fpdm``) follows one rule fixed before
  the run, FPDM's paper's: twice the steps, with the most iterations per step that keep FLOPs within the
  budget, warm start on, constant allocation. Reuse off, increasing/decreasing allocation and "same steps,
  more iterations" are reported at every budget too. At each model's default budget (25 steps) the held-out
  colour-shape pairs are measured as well (``default_budget_heldout``, 2 images per prompt).
- warm start: iterations to reach a residual tolerance per model call, cold against warm
  (``warm_start_iteration_reduction`` = 1 - warm / cold), and the residual against iteration and timestep.

    python bench/fpdm_vs_dit.py            # 2 images per seen prompt (320), budgets of 1-16 DiT steps
    python bench/fpdm_vs_dit.py --quick    # 1 image per prompt (160), budgets of 1/2/4/8 DiT steps

Writes bench/results/fpdm_vs_dit.json and bench/results/fpdm_vs_dit.png and prints tables.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _common import machine, write_result  # bench/ is on sys.path when run as a script
from torch.utils.flop_counter import FlopCounterMode

from genkit.data.shapes import ShapesDataset, prompt_set
from genkit.loading import load_pipeline, resolve_device
from genkit.metrics.evaluate import generate_images, load_oracle, real_features, score_images
from genkit.training.fpdm import FPDMTrainConfig, iteration_counts
from genkit.training.memory import optimizer_bytes, saved_activation_bytes

RESULTS = Path(__file__).parent / "results" / "fpdm_vs_dit.json"


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def call_flops(transformer, latents, t, ctx, **kw) -> float:
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        transformer(latents, t, ctx, **kw)
    return float(fc.get_total_flops())


def train_inputs(pipe, batch: int, seed: int = 0):
    """Training-shaped inputs: noisy latents, timesteps and the text states of real captions."""
    g = torch.Generator().manual_seed(seed)
    cfg = pipe.transformer.config
    x = torch.randn(batch, cfg.in_channels, cfg.sample_size, cfg.sample_size, generator=g)
    t = torch.randint(0, 1000, (batch,), generator=g)
    prompts = prompt_set("train")
    with torch.no_grad():
        ctx = pipe.encode_prompt([prompts[i % len(prompts)] for i in range(batch)]).float()
    return x, t, ctx


def train_memory(model, x, t, ctx, **kw) -> int:
    """Saved-for-backward bytes of one training forward/backward (parameters excluded)."""
    model.train()
    params = list(model.parameters())
    nbytes = saved_activation_bytes(
        lambda: model(x, t, ctx, **kw).sample.float().square().mean().backward(), params
    )
    model.zero_grad(set_to_none=True)
    model.eval()
    return nbytes


def train_step_flops(model, x, t, ctx, train_cfg: FPDMTrainConfig | None, draws: int = 40) -> float:
    """Mean FLOPs of one training step's forward and backward; FPDM over the S-JFB draws of ``draws``
    steps of ``train_cfg`` (None: a DiT, one draw)."""
    model.train()
    flops = []
    for step in range(draws if train_cfg is not None else 1):
        kw = {}
        if train_cfg is not None:
            n_total, n_grad = iteration_counts(train_cfg, step)
            kw = dict(num_iterations=n_total, num_grad_iterations=n_grad)
        with FlopCounterMode(display=False) as fc:
            model(x, t, ctx, **kw).sample.float().square().mean().backward()
        flops.append(fc.get_total_flops())
    model.zero_grad(set_to_none=True)
    model.eval()
    return float(np.mean(flops))


def trained_steps(path, fallback: int) -> tuple[int, FPDMTrainConfig | None]:
    """(training steps, the run's FPDMTrainConfig) from a pipeline folder's ``training.json``."""
    import dataclasses
    import json

    from genkit.loading import resolve_model

    f = resolve_model(path) / "training.json"
    if not f.is_file():
        return fallback, None
    info = json.loads(f.read_text())
    known = {fl.name for fl in dataclasses.fields(FPDMTrainConfig)}
    return int(info["max_train_steps"]), FPDMTrainConfig(**{k: v for k, v in info.items() if k in known})


def train_throughput(model, x, t, ctx, steps: int, train_cfg: FPDMTrainConfig, fpdm: bool) -> float:
    """Optimizer steps per second (forward, backward, AdamW), after two warm-up steps."""
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    t0 = 0.0
    for step in range(steps + 2):
        if step == 2:
            t0 = time.perf_counter()
        n_total, n_grad = iteration_counts(train_cfg, step) if fpdm else (0, None)
        model(x, t, ctx, num_iterations=n_total, num_grad_iterations=n_grad).sample.square().mean().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    secs = time.perf_counter() - t0
    model.eval()
    return steps / secs


def quality(pipe, oracle, ref, prompts, k, steps, guidance, **kw) -> dict:
    flops = []
    images, all_prompts, secs = generate_images(
        pipe, prompts, k, steps, guidance, seed=0, on_output=lambda o: flops.append(o.flops), **kw
    )
    r = score_images(images, all_prompts, oracle, ref)
    r["flops_per_image"] = sum(flops) / len(all_prompts)
    r["images_per_second"] = len(all_prompts) / secs
    r["steps"] = steps
    return r


def iterations_to_tol(pipe, prompts, steps, guidance, tol, cap, warm: bool, solver: str) -> dict:
    g = [torch.Generator().manual_seed(i) for i in range(len(prompts))]
    out = pipe(
        prompts,
        num_inference_steps=steps,
        guidance_scale=guidance,
        iterations_per_step=cap,
        warm_start=warm,
        tol=tol,
        solver=solver,
        generator=g,
        output_type="latent",
    )
    used = [len(r) for r in out.residuals]
    return {
        "iterations_per_call": used,
        "mean_iterations": float(np.mean(used)),
        "calls_at_cap": int(sum(u >= cap and r[-1] >= tol for u, r in zip(used, out.residuals, strict=True))),
    }


def residual_curves(pipe, prompts, steps, guidance, iterations, warm: bool) -> list[list[float]]:
    g = [torch.Generator().manual_seed(i) for i in range(len(prompts))]
    out = pipe(
        prompts,
        num_inference_steps=steps,
        guidance_scale=guidance,
        iterations_per_step=iterations,
        warm_start=warm,
        generator=g,
        output_type="latent",
    )
    return [[float(v) for v in r] for r in out.residuals]


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(16, 4.6))
    for name, rows in result["series"].items():
        xs = [r["flops_per_image"] / 1e9 for r in rows]
        ax[0].plot(xs, [r["fd"] for r in rows], "o-" if name in ("dit", "fpdm") else ".--", label=name)
    ax[0].axhline(result["fd_real_vs_real"], color="grey", lw=0.8, ls=":", label="real vs real")
    ax[0].set(xlabel="transformer GFLOPs per image (CFG included)", ylabel="FD (oracle features)")
    ax[0].set_xscale("log")
    ax[0].set_title("quality at equal sampling FLOPs")
    ax[0].legend(fontsize=7)
    curves = result["residuals"]
    n = len(curves["cold"])
    for j, i in enumerate(sorted({0, n // 4, n // 2, 3 * n // 4, n - 1})):
        c = f"C{j}"
        ax[1].semilogy(curves["cold"][i], color=c, label=f"step {i + 1}/{n} cold")
        ax[1].semilogy(curves["warm"][i], color=c, ls="--", label=f"step {i + 1}/{n} warm")
    ax[1].set(xlabel="fixed-point iteration", ylabel="relative residual ||f(z)-z||/||f(z)||")
    ax[1].set_title("residual against iteration and timestep")
    ax[1].legend(fontsize=6, ncol=2)
    ws = result["warm_start"]
    ax[2].plot(
        ws["cold"]["iterations_per_call"], "o-", label=f"cold (mean {ws['cold']['mean_iterations']:.1f})"
    )
    ax[2].plot(
        ws["warm"]["iterations_per_call"], "o-", label=f"warm (mean {ws['warm']['mean_iterations']:.1f})"
    )
    ax[2].set(xlabel="sampling step (noisiest first)", ylabel=f"iterations to residual < {ws['tol']}")
    ax[2].set_title("warm start: iterations to tolerance")
    ax[2].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(path)
    plt.close(fig)
    print(f"wrote {path}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 image per prompt, 3 budgets (a few minutes)")
    ap.add_argument("--fpdm", default="fpdm-shapes", help="bundled name or FPDM pipeline folder")
    ap.add_argument("--dit", default="dit-shapes", help="bundled name or DiT-baseline pipeline folder")
    ap.add_argument("--budgets", type=int, nargs="+", default=None, help="budgets as DiT step counts")
    ap.add_argument("--step-multiplier", type=float, default=2.0, help="FPDM steps per DiT step (headline)")
    ap.add_argument("--guidance", type=float, default=4.0)
    ap.add_argument("--fpdm-train-steps", type=int, default=2500, help="without training.json in --fpdm")
    ap.add_argument("--dit-train-steps", type=int, default=2500, help="without training.json in --dit")
    ap.add_argument("--train-batch", type=int, default=64, help="batch of the memory/throughput figures")
    ap.add_argument("--tol", type=float, default=1e-2, help="residual tolerance of the warm-start figure")
    ap.add_argument("--max-iterations", type=int, default=40, help="cap per call for the warm-start figure")
    ap.add_argument("--solver", default="picard", choices=["picard", "damped", "anderson"])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)

    budgets = args.budgets or ([1, 2, 4, 8] if args.quick else [1, 2, 3, 4, 6, 10, 16])
    per_prompt = 1 if args.quick else 2
    device = resolve_device(args.device)
    torch.manual_seed(0)
    t_start = time.perf_counter()
    fp = load_pipeline(args.fpdm, "dpm", device)
    dit = load_pipeline(args.dit, "dpm", device)
    oracle = load_oracle(None, device)
    fpdm_steps, fpdm_train_cfg = trained_steps(args.fpdm, args.fpdm_train_steps)
    dit_steps, _ = trained_steps(args.dit, args.dit_train_steps)
    train_cfg = fpdm_train_cfg or FPDMTrainConfig()  # the S-JFB draws the model was trained with
    fcfg = fp.transformer.config
    evals_per_step = fcfg.pre_depth + fcfg.num_iterations + fcfg.post_depth
    result: dict = {
        "fpdm_params": count_params(fp.transformer),
        "dit_params": count_params(dit.transformer),
        "fpdm_block_evaluations_per_step": evals_per_step,
        "dit_depth": dit.transformer.config.depth,
    }
    result["params_ratio"] = result["fpdm_params"] / result["dit_params"]

    # --- training memory and throughput, at the training batch, in fp32 on CPU tensors' shapes ---------
    x, t, ctx = (a.to(device) for a in train_inputs(fp, args.train_batch))
    fpm, ditm = fp.transformer, dit.transformer
    n_ng = train_cfg.no_grad_max
    sjfb = {
        g: train_memory(fpm, x, t, ctx, num_iterations=n_ng + g, num_grad_iterations=g)
        for g in range(train_cfg.grad_min, train_cfg.grad_max + 1)
    }
    full = train_memory(fpm, x, t, ctx, num_iterations=fcfg.num_iterations, num_grad_iterations=None)
    dit_act = train_memory(ditm, x, t, ctx)
    fp_opt, dit_opt = optimizer_bytes(fpm.parameters()), optimizer_bytes(ditm.parameters())
    worst = max(sjfb.values())
    result.update(
        {
            "train_batch": args.train_batch,
            "fpdm_saved_bytes_sjfb_by_grad_iterations": {str(g): b for g, b in sjfb.items()},
            "fpdm_saved_bytes_sjfb_worst": worst,
            "fpdm_saved_bytes_sjfb_mean": float(np.mean(list(sjfb.values()))),
            "fpdm_saved_bytes_full_backprop": full,
            "dit_saved_bytes": dit_act,
            "fpdm_optimizer_bytes": fp_opt,
            "dit_optimizer_bytes": dit_opt,
            "train_memory_ratio": (worst + fp_opt) / (dit_act + dit_opt),
            "train_memory_ratio_full_backprop": (full + fp_opt) / (dit_act + dit_opt),
        }
    )
    n_steps = 8 if args.quick else 30
    result["fpdm_train_steps_per_second"] = train_throughput(fpm, x, t, ctx, n_steps, train_cfg, True)
    result["dit_train_steps_per_second"] = train_throughput(ditm, x, t, ctx, n_steps, train_cfg, False)
    result["train_throughput_ratio"] = (
        result["fpdm_train_steps_per_second"] / result["dit_train_steps_per_second"]
    )
    fp_flops, dit_flops = train_step_flops(fpm, x, t, ctx, train_cfg), train_step_flops(ditm, x, t, ctx, None)
    result.update(
        {
            "fpdm_train_step_flops": fp_flops,
            "dit_train_step_flops": dit_flops,
            "fpdm_train_steps": fpdm_steps,
            "dit_train_steps": dit_steps,
            "fpdm_train_flops": fp_flops * fpdm_steps,
            "dit_train_flops": dit_flops * dit_steps,
            "train_flops_ratio": fp_flops * fpdm_steps / (dit_flops * dit_steps),
        }
    )
    print(f"  memory and throughput done ({time.perf_counter() - t_start:.0f}s)", file=sys.stderr)

    # --- sampling cost: measured FLOPs per image of one model call (CFG: batch of 2) -----------------
    lat = torch.randn(2, fcfg.in_channels, fcfg.sample_size, fcfg.sample_size, device=device)
    c2 = fp.encode_prompt(["", prompt_set("train")[0]])
    t0 = torch.tensor(999, device=device)
    fixed = call_flops(fpm, lat, t0, c2, num_iterations=0)
    per_iter = call_flops(fpm, lat, t0, c2, num_iterations=1) - fixed
    dit_call = call_flops(ditm, lat, t0, c2)
    result.update(
        {
            "fpdm_call_flops_fixed": fixed,
            "fpdm_iteration_flops": per_iter,
            "dit_call_flops": dit_call,
            "fpdm_default_call_over_dit_call": (fixed + fcfg.num_iterations * per_iter) / dit_call,
        }
    )

    def iters_for(steps_fpdm: int, budget: float) -> int:
        return int(math.floor((budget / steps_fpdm - fixed) / per_iter))

    # --- quality against FLOPs ---------------------------------------------------------------------
    prompts = prompt_set("train")
    ref = real_features(oracle, "train", 2000)
    n_img = len(prompts) * per_prompt
    real = ShapesDataset(n_img, oracle.config.resolution, seed=999, split="train").batch(range(n_img))
    result["fd_real_vs_real"] = score_images(real["pixel_values"], real["caption"], oracle, ref)["fd"]
    series: dict[str, list[dict]] = {}
    budgets_flops = [s * dit_call for s in budgets]
    for s, budget in zip(budgets, budgets_flops, strict=True):
        s2 = max(1, round(s * args.step_multiplier))
        n2, n1 = iters_for(s2, budget), iters_for(s, budget)
        runs = {
            "dit": (dit, s, {}),
            "fpdm": (fp, s2, dict(iterations_per_step=n2, warm_start=True)),
            "fpdm_no_reuse": (fp, s2, dict(iterations_per_step=n2, warm_start=False)),
            "fpdm_increasing": (fp, s2, dict(iterations_per_step=n2, allocation="increasing")),
            "fpdm_decreasing": (fp, s2, dict(iterations_per_step=n2, allocation="decreasing")),
            "fpdm_same_steps": (fp, s, dict(iterations_per_step=n1, warm_start=True)),
        }
        for name, (pipe, steps, kw) in runs.items():
            if kw.get("iterations_per_step", 1) < 1:
                continue  # the budget does not buy one iteration per step at this step count
            r = quality(pipe, oracle, ref, prompts, per_prompt, steps, args.guidance, **kw)
            r.update({"budget_flops": budget, "budget_dit_steps": s, **{k: v for k, v in kw.items()}})
            series.setdefault(name, []).append(r)
        print(f"  budget {s} DiT steps done ({time.perf_counter() - t_start:.0f}s)", file=sys.stderr)
    result["series"] = series
    result["budgets_dit_steps"] = budgets
    result["budgets_flops"] = budgets_flops
    result["fd_dit"] = [r["fd"] for r in series["dit"]]
    result["fd_fpdm"] = [r["fd"] for r in series["fpdm"]]
    result["prompt_accuracy_dit"] = [r["prompt_accuracy"] for r in series["dit"]]
    result["prompt_accuracy_fpdm"] = [r["prompt_accuracy"] for r in series["fpdm"]]
    result["fd_ratio_fpdm_over_dit"] = [
        a / b for a, b in zip(result["fd_fpdm"], result["fd_dit"], strict=True)
    ]
    result["fd_whole_dit"] = [r["fd_whole"] for r in series["dit"]]
    result["fd_whole_fpdm"] = [r["fd_whole"] for r in series["fpdm"]]
    result["fd_whole_ratio_fpdm_over_dit"] = [
        a / b for a, b in zip(result["fd_whole_fpdm"], result["fd_whole_dit"], strict=True)
    ]
    # --- each model at its default budget: 25 steps, FPDM at its default iterations --------------------
    result["default_budget"] = {
        name: quality(pipe, oracle, ref, prompts, per_prompt, 25, args.guidance)
        for name, pipe in (("fpdm", fp), ("dit", dit))
    }
    # ... and on the held-out colour-shape pairs (2 images per prompt: 80 per model)
    held, held_ref = prompt_set("heldout"), real_features(oracle, "heldout", 2000)
    result["default_budget_heldout"] = {
        name: quality(pipe, oracle, held_ref, held, 2, 25, args.guidance)
        for name, pipe in (("fpdm", fp), ("dit", dit))
    }

    # --- warm start and residuals at the default sampling setting (25 steps) ----------------------------
    ws_prompts = prompts[:: max(1, len(prompts) // (8 if args.quick else 16))]
    warm = iterations_to_tol(
        fp, ws_prompts, 25, args.guidance, args.tol, args.max_iterations, True, args.solver
    )
    cold = iterations_to_tol(
        fp, ws_prompts, 25, args.guidance, args.tol, args.max_iterations, False, args.solver
    )
    result["warm_start"] = {
        "tol": args.tol,
        "solver": args.solver,
        "cap": args.max_iterations,
        "steps": 25,
        "prompts": len(ws_prompts),
        "warm": warm,
        "cold": cold,
    }
    result["warm_start_iteration_reduction"] = 1 - warm["mean_iterations"] / cold["mean_iterations"]
    sweep = {}  # the same figure at tighter tolerances and with Anderson acceleration
    for solver in ("picard", "anderson"):
        for tol in (1e-2, 1e-3, 1e-4):
            w, c = (
                iterations_to_tol(fp, ws_prompts, 25, args.guidance, tol, args.max_iterations, on, solver)
                for on in (True, False)
            )
            sweep[f"{solver}_{tol:g}"] = {
                "cold": c["mean_iterations"],
                "warm": w["mean_iterations"],
                "reduction": 1 - w["mean_iterations"] / c["mean_iterations"],
                "calls_at_cap": {"cold": c["calls_at_cap"], "warm": w["calls_at_cap"]},
            }
    result["warm_start_sweep"] = sweep
    result["residuals"] = {
        "cold": residual_curves(fp, ws_prompts, 25, args.guidance, args.max_iterations, False),
        "warm": residual_curves(fp, ws_prompts, 25, args.guidance, args.max_iterations, True),
    }
    result["config"] = {**vars(args), "budgets": budgets, "images_per_prompt": per_prompt, "images": n_img}
    result["machine"] = machine(device)
    result["seconds"] = time.perf_counter() - t_start

    # --- tables -------------------------------------------------------------------------------------
    mb = 2**20
    print(f"{'':<28}{'FPDM':>12}{'DiT':>12}{'ratio':>8}")
    print(
        f"{'parameters':<28}{result['fpdm_params']:>12,}{result['dit_params']:>12,}{result['params_ratio']:>8.3f}"
    )
    print(
        f"{'train memory/step (MiB)':<28}{(worst + fp_opt) / mb:>12.1f}{(dit_act + dit_opt) / mb:>12.1f}"
        f"{result['train_memory_ratio']:>8.3f}"
    )
    print(
        f"{'  full backprop (MiB)':<28}{(full + fp_opt) / mb:>12.1f}{'':>12}"
        f"{result['train_memory_ratio_full_backprop']:>8.3f}"
    )
    print(
        f"{'train steps/s':<28}{result['fpdm_train_steps_per_second']:>12.2f}"
        f"{result['dit_train_steps_per_second']:>12.2f}{result['train_throughput_ratio']:>8.3f}"
    )
    print(
        f"{'train GFLOP/step':<28}{fp_flops / 1e9:>12.1f}{dit_flops / 1e9:>12.1f}{fp_flops / dit_flops:>8.3f}"
    )
    print(
        f"{'train steps, total PFLOP':<28}{f'{fpdm_steps}, {fp_flops * fpdm_steps / 1e15:.3f}':>12}"
        f"{f'{dit_steps}, {dit_flops * dit_steps / 1e15:.3f}':>12}{result['train_flops_ratio']:>8.3f}"
    )
    print()
    print(f"{'budget':>7} {'GFLOP/img':>10} " + " ".join(f"{n:>30}" for n in series))
    for s, b in zip(budgets, budgets_flops, strict=True):
        cells = []
        for rows in series.values():
            r = next((r for r in rows if r["budget_dit_steps"] == s), None)
            cells.append(
                f"{'-':>30}"
                if r is None
                else f"{r['fd']:>7.1f} {r['fd_whole']:>7.2f} {r['prompt_accuracy']:>5.3f} {r['flops_per_image'] / 1e9:>6.2f}G"
            )
        print(f"{s:>7} {b / 1e9:>10.2f} " + " ".join(cells))
    print(
        f"(cells: FD, whole-image FD, prompt accuracy, GFLOPs per image; FD real vs real at n={n_img}: "
        f"{result['fd_real_vs_real']:.1f})"
    )
    for name, r in result["default_budget"].items():
        print(
            f"default budget (25 steps), {name}: FD {r['fd']:.1f}, whole-image FD {r['fd_whole']:.2f}, "
            f"prompt accuracy {r['prompt_accuracy']:.3f} (shape {r['accuracy_shape']:.3f}), "
            f"{r['flops_per_image'] / 1e9:.1f} GFLOP per image"
        )
    for name, r in result["default_budget_heldout"].items():
        print(
            f"default budget, held-out pairs, {name}: FD {r['fd']:.1f}, whole-image FD {r['fd_whole']:.2f}, "
            f"prompt accuracy {r['prompt_accuracy']:.3f}"
        )
    print()
    print(
        f"warm start, {args.solver}, tol {args.tol}, 25 steps: {cold['mean_iterations']:.2f} -> "
        f"{warm['mean_iterations']:.2f} iterations per call "
        f"({100 * result['warm_start_iteration_reduction']:.1f}% fewer; at cap: cold {cold['calls_at_cap']}, warm {warm['calls_at_cap']})"
    )
    for k, v in sweep.items():
        print(f"  {k:<16} cold {v['cold']:.2f} warm {v['warm']:.2f} ({100 * v['reduction']:.1f}% fewer)")
    write_result(args.out, result)
    plot(result, Path(args.out).with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
