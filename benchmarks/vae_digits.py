"""Test log-likelihood of the default `vae` and `iwae` runs on digits, over seeds.

Trains each recipe with its defaults (exactly what `pyromix fit MODEL --data digits` does) for
every seed, evaluates the test split with S importance samples, and prints mean +- std over
seeds of the test log-likelihood, ELBO, bits/dim, the share of test points with Pareto k > 0.7,
the GMM-on-latents ACC, epochs run and training seconds. All runs share split seed 0, so they are
scored on the same test points.

    python benchmarks/vae_digits.py [--models vae iwae] [--seeds 0 1 2] [--samples S] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics

import torch

from pyromix.runs import evaluate_run, train_recipe

COLUMNS = {
    "test_log_likelihood": "log p(x)",
    "test_elbo": "ELBO",
    "bits_per_dim": "bits/dim",
    "pareto_k_share_above_0.7": "k>0.7",
    "gmm_acc": "GMM ACC",
    "epochs": "epochs",
    "train_seconds": "train s",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["vae", "iwae"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--json", help="also write every run's metrics here")
    args = parser.parse_args()

    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
    )
    results = {}
    for model in args.models:
        results[model] = [
            evaluate_run(train_recipe(model, "digits", seed=seed, progress=False), args.samples)
            for seed in args.seeds
        ]
    print(f"digits test split, S = {args.samples}, seeds {args.seeds}: mean +- std over seeds")
    print(f"{'model':<8}" + "".join(f"{title:>18}" for title in COLUMNS.values()))
    for model, runs in results.items():
        cells = []
        for key in COLUMNS:
            values = [float(r[key]) for r in runs]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):>10.3f} +- {spread:<5.3f}")
        print(f"{model:<8}" + "".join(cells))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": vars(args), "runs": results}, f, indent=2)


if __name__ == "__main__":
    main()
