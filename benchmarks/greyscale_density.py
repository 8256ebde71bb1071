"""Test log p(x) on grey-scale data: Takahashi et al. (2019)'s Table 2 protocol, four models.

Takahashi, Iwata, Yamanaka, Yamada and Yagi (2019), *Variational autoencoder with implicit
optimal priors*, AAAI, 5.2 and Table 2, on grey-scale data this machine has:

- ``fashion-mnist``: intensities / 255 in [0, 1]; 10,000 training and 2,000 validation images from
  a seeded shuffle (``--split-seed``) of the official training set, and the full 10,000-image
  test set (Debian's ``dataset-fashion-mnist``, installed below if missing).
- ``digits``: scikit-learn's digits, pixels / 16 in [0, 1], pyromix's own split.

Models (``--models``; the default is the protocol's four): ``vae``, ``vampprior`` (K = 500) and
``iop`` with the heteroscedastic Gaussian decoder, and ``vae`` with one learned std per pixel
(``vae-gaussian``); ``vae-bounded`` adds the heteroscedastic decoder with the VampPrior code's
log-variance bounds [-4.5, 0] (Tomczak and Welling 2018), to measure their effect. Every model:
gated 500-500 encoder and decoder, z = 40, sigmoid mean, Adam lr 5e-4, batch 100, KL warm-up over
``--warmup`` epochs, at most ``--epochs`` epochs with early stopping on the validation bound (the
recipes' patience), best weights kept. Test log p(x) by importance sampling with S =
``--samples``, in nats per image; mean +- std over seeds.

    python benchmarks/greyscale_density.py --data fashion-mnist   # the full protocol
    python benchmarks/greyscale_density.py --data digits --json greyscale_digits.json
    # a reduced budget: one seed, capped epochs, a test subset
    python benchmarks/greyscale_density.py --data fashion-mnist --seeds 0 --epochs 20 \\
        --warmup 5 --test-points 1000

Each finished run is appended to ``--json`` at once, so a long benchmark keeps what it measured.
A run that diverges (a NaN) is scored at its last good epoch and says so (``diverged``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from pyromix.data import Dataset, Split, load_dataset
from pyromix.evaluate import log_likelihood
from pyromix.likelihoods import init_from_data_
from pyromix.runs import evaluate_run, prepare_recipe, train_run
from pyromix.train import TrainingDiverged

NETWORKS = {"latent_dim": 40, "hidden": [500, 500], "gated": True, "sigmoid_mean": True}
MODELS = {
    "vae": ("vae", {"likelihood": "heteroscedastic"}),
    "vampprior": ("vampprior", {"likelihood": "heteroscedastic", "components": 500}),
    "iop": ("iop", {"likelihood": "heteroscedastic"}),
    "vae-gaussian": ("vae", {"likelihood": "gaussian"}),
    "vae-bounded": ("vae", {"likelihood": "heteroscedastic", "logvar_bounds": [-4.5, 0.0]}),
}
PROTOCOL = ("vae", "vampprior", "iop", "vae-gaussian")
# log_likelihood's chunks budget S x N x D numbers, but the VampPrior's prior holds S x N x K x z
# of them: 2^24 / 64 x 500 x 40 floats (21 GB) on digits. A smaller budget keeps it in memory.
log_likelihood.__kwdefaults__["max_elements"] = 2**20
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_TRAIN, FASHION_VAL = 10_000, 2_000


def fashion_mnist(split_seed: int) -> Dataset:
    """10,000 / 2,000 training / validation images from a seeded shuffle, the full test set."""
    if not FASHION_DIR.exists():
        subprocess.run(["apt-get", "install", "-y", "dataset-fashion-mnist"], check=True)
    full = load_dataset("fashion-mnist", seed=split_seed)
    x = torch.cat([full.train.x, full.val.x])
    y = torch.cat([full.train.y, full.val.y])
    order = torch.from_numpy(np.random.default_rng(split_seed).permutation(len(x)))
    train, val = order[:FASHION_TRAIN], order[FASHION_TRAIN : FASHION_TRAIN + FASHION_VAL]
    return Dataset(
        "fashion-mnist", Split(x[train], y[train]), Split(x[val], y[val]), full.test, (28, 28)
    )


def one_run(data: str, model: str, seed: int, options: argparse.Namespace) -> dict:
    name, overrides = MODELS[model]
    settings = dict(
        NETWORKS,
        **overrides,
        binarize="none",
        lr=options.lr,
        warmup=options.warmup,
        epochs=options.epochs,
        seed=seed,
        split_seed=options.split_seed,
    )
    run = prepare_recipe(name, data, **settings)
    if data == "fashion-mnist":  # the protocol's 10,000 / 2,000 split of the training set
        run.dataset = fashion_mnist(options.split_seed)
        init_from_data_(run.model, run.dataset.train.x)
    started = time.perf_counter()
    diverged = None
    try:
        train_run(run, progress=False)
    except TrainingDiverged as error:  # the model holds the last good epoch: score that
        run.history, diverged = error.history, str(error)
    seconds = time.perf_counter() - started
    if options.test_points:
        test = run.dataset.test
        run.dataset = replace(
            run.dataset, test=Split(test.x[: options.test_points], test.y[: options.test_points])
        )
    metrics = evaluate_run(run, options.samples)
    record = {
        "model": model,
        "seed": seed,
        "test_log_likelihood": metrics["test_log_likelihood"],
        "test_elbo": metrics["test_elbo"],
        "epochs": metrics["epochs"],
        "best_epoch": metrics["best_epoch"],
        "stopped": metrics["stopped"],
        "seconds_per_epoch": seconds / max(metrics["epochs"], 1),
        "train_seconds": seconds,
        "test_points": metrics["test_points"],
        "footing": metrics["footing"],
        "prior_is_approximate": metrics["prior_is_approximate"],  # iop: an estimated prior
        "prior_log_normalizer": metrics.get("prior_log_normalizer"),
        "load_average": os.getloadavg()[0],
        "diverged": diverged,
    }
    print(json.dumps(record), flush=True)
    return record


def summarise(records: list[dict], models: list[str]) -> dict:
    """Mean +- std of test log p(x) per model, and the heteroscedastic decoder's advantage."""
    table = {}
    for model in models:
        values = [r["test_log_likelihood"] for r in records if r["model"] == model]
        if values:
            table[model] = {
                "mean": statistics.mean(values),
                "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "seeds": len(values),
                "epochs": [r["epochs"] for r in records if r["model"] == model],
                "seconds_per_epoch": statistics.mean(
                    r["seconds_per_epoch"] for r in records if r["model"] == model
                ),
            }
    print(f"\n{'model':<14}{'test log p(x)':>22}{'epochs':>18}{'s/epoch':>10}")
    for model, row in table.items():
        cell = f"{row['mean']:.1f} +- {row['std']:.1f} ({row['seeds']})"
        print(f"{model:<14}{cell:>22}{str(row['epochs']):>18}{row['seconds_per_epoch']:>10.1f}")
    if "vae" in table and "vae-gaussian" in table:
        table["heteroscedastic_advantage"] = table["vae"]["mean"] - table["vae-gaussian"]["mean"]
        print(f"heteroscedastic - per-pixel std (vae): {table['heteroscedastic_advantage']:.1f}")
    if all(m in table for m in ("iop", "vampprior", "vae")):
        means = [table[m]["mean"] for m in ("iop", "vampprior", "vae")]
        table["order_as_table_2"] = means[0] >= means[1] >= means[2]
        print(f"iop >= vampprior >= vae: {table['order_as_table_2']}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=["fashion-mnist", "digits"], default="fashion-mnist")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(PROTOCOL))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--test-points", type=int, help="evaluate on the first N test points")
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--json", help="append each run and the summary here")
    options = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), load average {os.getloadavg()[0]:.1f}"
    )
    print(f"command: {vars(options)}", flush=True)
    records = []
    for seed in options.seeds:
        for model in options.models:
            records.append(one_run(options.data, model, seed, options))
            if options.json:
                Path(options.json).write_text(
                    json.dumps({"command": vars(options), "runs": records}, indent=2)
                )
    table = summarise(records, options.models)
    if options.json:
        payload = {"command": vars(options), "runs": records, "summary": table}
        Path(options.json).write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
