"""Benchmark the bundled VAE: reconstruction error and whether the oracle still reads the attributes.

Baseline in the same run: the oracle on the real images themselves. Reports MSE and PSNR (images in
[0, 1]), the oracle's accuracy per attribute on real images and on reconstructions, and their ratio,
overall and for small shapes (the hard case for a downsampling VAE).

    python bench/vae.py [--quick] [--vae PATH]

Writes bench/results/vae.json and prints a table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from _common import write_result  # bench/ is on sys.path when run as a script
from diffusers import AutoencoderKL

from genkit.assets import bundled_models
from genkit.data.shapes import ShapesDataset
from genkit.metrics.evaluate import load_oracle
from genkit.training.latents import vae_roundtrip

RESULTS = Path(__file__).parent / "results" / "vae.json"
HEADS = ("shape", "color", "position", "size")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="500 images instead of 2000")
    ap.add_argument("--vae", default=None, help="AutoencoderKL folder (default: the bundled model's vae/)")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)

    path = args.vae or str(Path(bundled_models()["text2img-shapes"]["path"]) / "vae")
    vae = AutoencoderKL.from_pretrained(path).eval()
    oracle = load_oracle()
    n = 500 if args.quick else 2000
    ds = ShapesDataset(n, vae.config.sample_size, seed=2024, split="all")
    batch = ds.batch(range(n))
    x = batch["pixel_values"]
    recon = vae_roundtrip(vae, x, chunk=250)
    mse = ((recon - x) / 2).square().mean().item()
    small = batch["labels"]["size"] == 0
    real_pred, rec_pred = oracle.predict(x), oracle.predict(recon)
    result = {
        "vae": path,
        "num_images": n,
        "mse": mse,
        "psnr": 10 * torch.log10(torch.tensor(1.0 / mse)).item(),
        "latent_channels": vae.config.latent_channels,
        "latent_side": vae.config.sample_size // 2 ** (len(vae.config.block_out_channels) - 1),
    }
    print(f"{'attribute':<10} {'real':>7} {'recon':>7} {'ratio':>7} {'recon small':>12}")
    for k in HEADS:
        real_acc = (real_pred[k] == batch["labels"][k]).float().mean().item()
        rec_acc = (rec_pred[k] == batch["labels"][k]).float().mean().item()
        rec_small = (rec_pred[k][small] == batch["labels"][k][small]).float().mean().item()
        result[f"oracle_accuracy_real_{k}"] = real_acc
        result[f"oracle_accuracy_recon_{k}"] = rec_acc
        result[f"oracle_accuracy_recon_small_{k}"] = rec_small
        result[f"accuracy_ratio_{k}"] = rec_acc / real_acc
        print(f"{k:<10} {real_acc:>7.3f} {rec_acc:>7.3f} {rec_acc / real_acc:>7.3f} {rec_small:>12.3f}")
    print(f"MSE {mse:.5f}  PSNR {result['psnr']:.2f} dB  ({n} images)")
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
