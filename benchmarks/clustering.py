"""Clustering quality of the Gaussian-mixture recipes against k-means on raw pixels.

Trains every recipe on the dataset for each seed with its defaults (or `--set key=value`
overrides), scores the test split, and prints mean +- std over seeds of ACC / NMI / ARI of the
model's own readout (argmax q(y|x), or p(y|z) for VaDE), of a GMM on latent means (`gmm_*`), and
training seconds (wall time of the whole training: pretraining and every start included);
k-means (scikit-learn, 10 restarts) on the raw test pixels is the reference. All runs share
split seed 0. Each run's collapse diagnostics (`pyromix.diagnostics`: effective clusters of
argmax q(y|x), active latent units) are kept, and each method's row says how many of its runs
collapsed. With `--restarts R` every run trains R starts for a tenth of its epochs and the best
by validation loss to the end (`pyromix.restarts`; labels are never read).

    python benchmarks/clustering.py [--recipes gmvae nvisa nvil gmvae-meanfield vade]
        [--seeds 0 1 2 3 4] [--data digits|fashion-mnist] [--set epochs=100 ...]
        [--restarts R] [--json PATH]

With `--json`, every finished run is written at once, so a cut-off benchmark keeps its runs.

`--data fashion-mnist` installs Debian's dataset-fashion-mnist when its files are missing
(Li et al. 2020, Table I reports NVISA at 62.63 +- 2.92 ACC there).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import time
from pathlib import Path

import torch
from sklearn.cluster import KMeans

from pyromix.data import load_dataset
from pyromix.evaluate import clustering_scores
from pyromix.restarts import train_restarts
from pyromix.runs import evaluate_run, prepare_recipe

KEYS = ("acc", "nmi", "ari", "gmm_acc", "gmm_nmi", "gmm_ari", "train_seconds", "epochs")
KEPT = (*KEYS, "effective_clusters", "active_units", "warnings", "restarts", "seed")


def ensure_fashion_mnist() -> None:
    if Path("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz").exists():
        return
    if shutil.which("apt-get") is None:
        raise SystemExit(
            "fashion-mnist: install Debian's dataset-fashion-mnist or pass PYROMIX_DATA"
        )
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "dataset-fashion-mnist"], check=True)


def parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def summarise(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} +- {spread:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--recipes", nargs="+", default=["gmvae", "nvisa", "nvil", "gmvae-meanfield", "vade"]
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--data", default="digits")
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="recipe arguments for every run, e.g. epochs=100 std_annealing=true",
    )
    parser.add_argument("--samples", type=int, default=100, help="importance samples (log p(x))")
    parser.add_argument("--restarts", type=int, default=1, help="starts per run (1: none)")
    parser.add_argument("--json", help="also write every run's metrics here")
    args = parser.parse_args()
    overrides = dict(item.split("=", 1) for item in args.set)
    overrides = {k: parse_value(v) for k, v in overrides.items()}
    if args.data == "fashion-mnist":
        ensure_fashion_mnist()

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), load {os.getloadavg()}; data {args.data}; "
        f"seeds {args.seeds}; restarts {args.restarts}; {overrides}",
        flush=True,
    )
    test = load_dataset(args.data).test
    rows: dict[str, list[dict]] = {}
    for seed in args.seeds:
        labels = KMeans(int(test.y.max()) + 1, n_init=10, random_state=seed).fit_predict(
            test.x.numpy()
        )
        rows.setdefault("k-means (pixels)", []).append(clustering_scores(test.y.numpy(), labels))
    for recipe in args.recipes:
        for seed in args.seeds:
            run = prepare_recipe(recipe, args.data, seed=seed, **overrides)
            started = time.perf_counter()
            run = train_restarts(run, args.restarts, progress=False)
            metrics = evaluate_run(run, args.samples)
            metrics["train_seconds"] = time.perf_counter() - started
            rows.setdefault(recipe, []).append({k: metrics[k] for k in KEPT if k in metrics})
            print(
                f"  {recipe} seed {seed}: "
                + ", ".join(f"{k} {metrics[k]:.3f}" for k in KEYS)
                + f", effective clusters {metrics['effective_clusters']:.1f}, warnings "
                f"{metrics['warnings']}, load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            if args.json:
                Path(args.json).write_text(json.dumps({"args": vars(args), "runs": rows}, indent=2))

    print(f"\n{'method':<18}" + "".join(f"{k:>20}" for k in KEYS) + "  collapsed")
    for method, runs in rows.items():
        cells = [summarise([r[k] for r in runs]) if k in runs[0] else "-" for k in KEYS]
        collapsed = sum(bool(r.get("warnings")) for r in runs) if "warnings" in runs[0] else "-"
        print(f"{method:<18}" + "".join(f"{c:>20}" for c in cells) + f"  {collapsed}/{len(runs)}")


if __name__ == "__main__":
    main()
