"""Flows and VAEs with flows on digits: test bits/dim from the importance-sampled log p(x).

Rows: ``flow`` on binarised digits (2 levels: the footing of the Bernoulli VAEs, so the rows
compare), ``vae``, ``vae --guide iaf``, ``vae --prior flow``, ``hvp``, and ``flow`` on digits'
17 grey levels (a different event: its bits/dim do not compare with the others). Every model is
trained with its recipe defaults for at most ``--epochs`` (early stopping: patience 30) and
evaluated with S importance samples per test point; the flows' proposal is the uniform
dequantisation. Mean +- std over seeds.

The anchor, printed first: the exact test bits/dim of independent pixels (a per-pixel Bernoulli,
or a 17-way categorical, fitted to the training split with add-one smoothing) on the very same
test points. No published flow number is on this data (8x8 digits, 2 or 17 levels); Real NVP's
3.49 bits/dim on CIFAR-10 (Dinh et al. 2017) is a 256-level, 3072-dimension event and does not
compare.

    python benchmarks/flows_digits.py [--seeds 0 1 2] [--epochs 200] [--samples 1000] \\
        [--json PATH] [--resume]
"""

from __future__ import annotations

import argparse
import os
import platform

import torch
from learned_priors import _mean_std, _pending, _resumed, _save

from pyromix.data import load_dataset
from pyromix.runs import evaluate_run, train_recipe

CONFIGS = [
    ("flow, 2 levels", "flow", {"binarize": "dynamic"}),
    ("vae", "vae", {}),
    ("vae --guide iaf", "vae", {"guide": "iaf"}),
    ("vae --prior flow", "vae", {"prior": "flow"}),
    ("hvp", "hvp", {}),
    ("flow, 17 levels", "flow", {}),
]
KEYS = (
    "bits_per_dim",
    "test_log_likelihood",
    "test_elbo",
    "pareto_k_max",
    "pareto_k_share_above_0.7",
    "footing",
    "epochs",
    "train_seconds",
)


def independent_pixels_bits(levels: int, split_seed: int = 0) -> float:
    """Exact test bits/dim of a product of per-pixel categoricals on ``levels`` levels.

    With 2 levels the test split is binarised as the recipes binarise it (``split_seed``), and
    the training split's intensities are the expected counts of dynamic binarisation.
    """
    data = load_dataset("digits", seed=split_seed)
    if levels == 2:
        data = data.binarized("dynamic", split_seed)
        ones = data.train.x.double().sum(0)
        counts = torch.stack([len(data.train.x) - ones, ones])
    else:
        train_levels = (data.train.x.double() * (levels - 1)).round().long()
        counts = torch.stack([(train_levels == k).sum(0) for k in range(levels)]).double()
    log_p = ((counts + 1) / (counts.sum(0) + levels)).log()  # (levels, D)
    test = (data.test.x.double() * (levels - 1)).round().long()  # (N, D)
    log_px = log_p.gather(0, test).sum(-1)  # (N,)
    return float(-log_px.mean() / (data.data_dim * torch.log(torch.tensor(2.0))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--samples", type=int, default=1000, help="importance samples S")
    parser.add_argument("--models", nargs="+", default=[label for label, _, _ in CONFIGS])
    parser.add_argument("--json", help="also write every run's numbers here")
    parser.add_argument("--resume", action="store_true", help="keep the runs saved in --json")
    args = parser.parse_args()
    args.experiment = "flows_digits"
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), load {os.getloadavg()}",
        flush=True,
    )
    for levels in (2, 17):
        print(f"anchor: independent pixels, {levels} levels: "
              f"{independent_pixels_bits(levels):.4f} bits/dim", flush=True)
    results = _resumed(args)
    for label, name, options in CONFIGS:
        if label not in args.models:
            continue
        for seed in _pending(args, results, label):
            run = train_recipe(
                name, "digits", seed=seed, epochs=args.epochs, progress=False, **options
            )
            metrics = evaluate_run(run, args.samples)
            results[label].append({"seed": seed, **{k: metrics[k] for k in KEYS}})
            print(label, results[label][-1], f"load {os.getloadavg()}", flush=True)
            _save(args, results)
    print(f"\ndigits test split, S = {args.samples}, seeds {args.seeds}, load {os.getloadavg()}")
    header = ("bits/dim", "-log p(x)", "-ELBO", "max Pareto k", "epochs")
    print(f"{'model':<18}" + "".join(f"{h:>18}" for h in header) + "   footing")
    for label, runs in results.items():
        cells = [
            _mean_std([r["bits_per_dim"] for r in runs], 4),
            _mean_std([-r["test_log_likelihood"] for r in runs], 2),
            _mean_std([-r["test_elbo"] for r in runs], 2),
            _mean_std([r["pareto_k_max"] for r in runs], 2),
            _mean_std([r["epochs"] for r in runs], 0),
        ]
        print(f"{label:<18}" + "".join(f"{c:>18}" for c in cells) + f"   {runs[0]['footing']}")


if __name__ == "__main__":
    main()
