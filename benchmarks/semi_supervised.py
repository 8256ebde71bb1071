"""Semi-supervised M2 against logistic regression on the same revealed labels.

For each seed s the digits are split with split seed s and 10 % of the training labels are
revealed (stratified by class, `Dataset.reveal(0.1, seed=s)`). The `m2` recipe trains on all
training points with those labels; scikit-learn's logistic regression trains on the revealed
points alone (pixel intensities). Both are scored on the test split, whose labels no model sees;
M2's accuracy on the validation split (labels also hidden) is recorded too, for choosing settings
without the test split. Prints and writes mean +- std over seeds.

    nice -n 10 python benchmarks/semi_supervised.py [--seeds 0 1 2 3 4] [--labeled 0.1]
        [--set epochs=80 likelihood=gaussian alpha=1.0 ...] [--name NAME] [--baseline-only]

Writes benchmarks/results/semi_supervised[_NAME].json and .log (one torch thread);
``--baseline-only`` fits the logistic regression alone (semi_supervised_logreg.*).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from sklearn.linear_model import LogisticRegression

from pyromix.data import load_dataset
from pyromix.runs import evaluate_run, train_recipe

RESULTS = Path(__file__).resolve().parent / "results"


def parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def summarise(values: list[float]) -> dict[str, float]:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.mean(values), "std": spread}


def accuracy(probs: torch.Tensor, y: torch.Tensor) -> float:
    return float((probs.argmax(-1) == y).float().mean())


def one_seed(seed: int, labeled: float, settings: dict) -> dict:
    started = time.perf_counter()
    run = train_recipe(
        "m2", "digits", seed=seed, split_seed=seed, labeled=labeled, progress=False, **settings
    )
    metrics = evaluate_run(run, num_samples=1000)
    data = run.dataset
    return {
        **logistic_baseline(seed, labeled),
        "m2_test_accuracy": metrics["test_accuracy"],
        "m2_val_accuracy": accuracy(run.guide.cluster_probs(data.val.x), data.val.y),
        "m2_test_log_likelihood": metrics["test_log_likelihood"],
        "m2_epochs": metrics["epochs"],
        "m2_best_epoch": metrics["best_epoch"],
        "m2_likelihood": run.args["likelihood"],
        "seconds": time.perf_counter() - started,
    }


def logistic_baseline(seed: int, labeled: float) -> dict:
    """Logistic regression on the revealed training points of split seed ``seed``, scored on
    the test split; both as pixel intensities (never binarised), the same revealed points as
    M2's (``Dataset.reveal`` depends on the labels and the seed alone)."""
    data = load_dataset("digits", seed=seed).reveal(labeled, seed=seed)
    mask = data.train.labeled.numpy()
    x, y = data.train.x.numpy(), data.train.y.numpy()
    baseline = LogisticRegression(max_iter=5000).fit(x[mask], y[mask])
    score = baseline.score(data.test.x.numpy(), data.test.y.numpy())
    return {"seed": seed, "revealed": int(mask.sum()), "logreg_test_accuracy": float(score)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--labeled", type=float, default=0.1)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--name", default="")
    parser.add_argument(
        "--baseline-only", action="store_true", help="logistic regression alone (name: logreg)"
    )
    ns = parser.parse_args()
    torch.set_num_threads(1)
    settings = {k: parse_value(v) for k, v in (item.split("=", 1) for item in ns.set)}
    name = "logreg" if ns.baseline_only else ns.name
    stem = "semi_supervised" + (f"_{name}" if name else "")
    lines = [f"settings {settings}, labeled {ns.labeled}, load at start {os.getloadavg()}"]
    print(lines[0], flush=True)
    rows = []
    for seed in ns.seeds:
        if ns.baseline_only:
            rows.append(logistic_baseline(seed, ns.labeled))
        else:
            rows.append(one_seed(seed, ns.labeled, settings))
        lines.append(json.dumps(rows[-1]))
        print(lines[-1], flush=True)
    keys = ("m2_test_accuracy", "m2_val_accuracy", "logreg_test_accuracy", "seconds")
    keys = tuple(k for k in keys if k in rows[0])
    summary = {k: summarise([r[k] for r in rows]) for k in keys}
    lines.append(f"load at end {os.getloadavg()}")
    for k, v in summary.items():
        lines.append(f"{k}: {v['mean']:.3f} +- {v['std']:.3f}")
    print("\n".join(lines[-len(summary) - 1 :]))
    payload = {
        "command": "python benchmarks/semi_supervised.py "
        + " ".join(
            [f"--seeds {' '.join(map(str, ns.seeds))}", f"--labeled {ns.labeled}"]
            + ([f"--set {' '.join(ns.set)}"] if ns.set else [])
            + ([f"--name {ns.name}"] if ns.name else [])
            + (["--baseline-only"] if ns.baseline_only else [])
        ),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        "1 torch thread",
        "load_at_start": lines[0].split("load at start ")[1],
        "load_at_end": lines[-len(summary) - 1],
        "settings": settings,
        "rows": rows,
        "summary": summary,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (RESULTS / f"{stem}.log").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
