"""Chowdhury et al.'s Tables 2 and 3 in form on digits: beta-MVAE (EM-V2), the three q(y) forms, timing.

Table 3: for beta in {0.1, ..., 0.5}, beta-MVAE (EM-V2) with soft and hard optimisation, both
clustering readouts of Chowdhury et al., 4.2 on the test split: a GMM on the latent of the MAP y
(`gmm_*`) and the "posterior probability" argmax q(y) (`acc`, `nmi`, `ari`); mean +- std and the
best over seeds (the paper reports the best of five runs). Then MVAE (eq. 5), EM-V1 (eq. 10) and
EM-V2 (eq. 15) at beta = 1, and the comparators `vae` (+ a GMM on latent means) and `vade`.
Table 2: training seconds of every recipe (mean over seeds, and per epoch), from the same runs.

Every MVAE run of a seed starts from one shared autoencoder pretraining + GMM initialisation
(the recipes' `initialize`, computed once per seed, not counted in the training seconds), so
the cells differ only in what they vary. All runs use the recipes' defaults otherwise (Gaussian
decoder, std annealing, latent 10, K = 10), `--epochs` epochs, split seed 0.

    python benchmarks/mvae.py [--seeds 0 1 2 3 4] [--epochs 50] [--pretrain-epochs 50]
        [--betas 0.1 0.2 0.3 0.4 0.5] [--parts table3 variants comparators]
        [--variants mvae mvae-em1 mvae-em2] [--modes soft hard]
        [--set KEY=VALUE ...] [--restarts R]
        [--json benchmarks/results/mvae_digits.json]
    python benchmarks/mvae.py --report benchmarks/results/mvae_digits.json   # tables only

Each finished run is appended to the JSON file at once, so a cut-off benchmark keeps its runs
and `--report` prints the tables from what finished.

With `--restarts R` (R > 1) every MVAE run trains R starts of its own, pretraining included, for
a tenth of its epochs and the best by validation loss to the end (`pyromix.restarts`): the
shared pretraining is then not used, and the training seconds include every start's. Each run's
collapse warnings (`pyromix.diagnostics`) are kept in the JSON file.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from clustering import parse_value  # the sibling benchmark script's KEY=VALUE parsing

from pyromix.recipes import get_recipe
from pyromix.restarts import train_restarts
from pyromix.runs import evaluate_run, prepare_recipe, train_recipe, train_run

READOUTS = {"GMM": "gmm_", "posterior": ""}
SCORES = ("acc", "nmi", "ari")
# Chowdhury et al., Table 3 (digits): ACC % of the best of five runs, by (beta, mode, readout).
PAPER_ACC = {
    (0.1, "soft", "GMM"): 80.37, (0.1, "soft", "posterior"): 29.26,
    (0.1, "hard", "GMM"): 81.48, (0.1, "hard", "posterior"): 44.07,
    (0.2, "soft", "GMM"): 80.37, (0.2, "soft", "posterior"): 37.04,
    (0.2, "hard", "GMM"): 80.00, (0.2, "hard", "posterior"): 58.52,
    (0.3, "soft", "GMM"): 84.44, (0.3, "soft", "posterior"): 54.44,
    (0.3, "hard", "GMM"): 74.81, (0.3, "hard", "posterior"): 45.18,
    (0.4, "soft", "GMM"): 80.00, (0.4, "soft", "posterior"): 62.22,
    (0.4, "hard", "GMM"): 71.85, (0.4, "hard", "posterior"): 52.22,
    (0.5, "soft", "GMM"): 73.70, (0.5, "soft", "posterior"): 70.37,
    (0.5, "hard", "GMM"): 68.15, (0.5, "hard", "posterior"): 55.56,
}  # fmt: skip


VARIANTS = ("mvae", "mvae-em1", "mvae-em2")


def pretrained(seed: int, args: argparse.Namespace, cache: dict) -> dict:
    """Model and guide state after the MVAE recipes' pretraining for ``seed`` (computed once)."""
    if seed not in cache:
        run = prepare_recipe(
            "mvae",
            "digits",
            seed=seed,
            epochs=args.epochs,
            pretrain_epochs=args.pretrain_epochs,
            **args.overrides,
        )
        started = time.perf_counter()
        get_recipe("mvae").initialize(run.model, run.guide, run.dataset, run.args)
        cache[seed] = {
            "model": copy.deepcopy(run.model.state_dict()),
            "guide": copy.deepcopy(run.guide.state_dict()),
            "seconds": time.perf_counter() - started,
        }
    return cache[seed]


def train_mvae(name: str, seed: int, options: dict, args, cache: dict) -> dict:
    options = {**args.overrides, **options}
    if args.restarts > 1:  # each start pretrains itself
        run = prepare_recipe(
            name,
            "digits",
            seed=seed,
            epochs=args.epochs,
            pretrain_epochs=args.pretrain_epochs,
            **options,
        )
        started = time.perf_counter()
        run = train_restarts(run, args.restarts, progress=False)
        metrics = evaluate_run(run, args.samples)
        return {**metrics, "train_seconds": time.perf_counter() - started}
    state = pretrained(seed, args, cache)
    run = prepare_recipe(
        name, "digits", seed=seed, epochs=args.epochs, pretrain_epochs=0, **options
    )
    run.model.load_state_dict(state["model"])
    run.guide.load_state_dict(state["guide"])
    train_run(run, progress=False)
    return {**evaluate_run(run, args.samples), "pretrain_seconds": state["seconds"]}


def train_comparator(name: str, seed: int, args) -> dict:
    extra = {"pretrain_epochs": args.pretrain_epochs} if name == "vade" else {}
    # The VAE with the mixture recipes' Gaussian decoder and no early stopping, for the timing.
    if name == "vae":
        extra = {"likelihood": "gaussian", "patience": None}
    run = train_recipe(name, "digits", seed=seed, epochs=args.epochs, progress=False, **extra)
    return evaluate_run(run, args.samples)


def configurations(args) -> list[tuple[str, str, dict]]:
    """(row label, recipe, options) in the order they run: Table 3 first."""
    modes = [mode == "hard" for mode in args.modes]
    rows = []
    if "table3" in args.parts:
        for beta in args.betas:
            for hard in modes:
                label = f"beta-MVAE (EM-V2) beta={beta} {'hard' if hard else 'soft'}"
                rows.append((label, "mvae-em2", {"beta": beta, "hard": hard}))
    if "variants" in args.parts:
        for name, title in (
            ("mvae", "MVAE"),
            ("mvae-em1", "MVAE (EM-V1)"),
            ("mvae-em2", "MVAE (EM-V2)"),
        ):
            if name not in args.variants:
                continue
            for hard in modes:
                rows.append((f"{title} {'hard' if hard else 'soft'}", name, {"hard": hard}))
    if "comparators" in args.parts:
        rows += [("VAE + GMM", "vae", {}), ("VaDE", "vade", {})]
    return rows


def cell(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.2f} +- {100 * spread:.2f} ({100 * max(values):.2f})"


def report(runs: list[dict]) -> str:
    by_label: dict[str, list[dict]] = {}
    for r in runs:
        by_label.setdefault(r["label"], []).append(r)
    lines = [
        (
            "Scores in %: mean +- std over seeds (best seed in brackets); "
            f"seeds per row: {sorted({len(v) for v in by_label.values()})}."
        ),
        "",
        "| method | readout | ACC | NMI | ARI | Chowdhury et al. ACC (best of 5) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for label, rs in by_label.items():
        for readout, prefix in READOUTS.items():
            if f"{prefix}acc" not in rs[0]:
                continue
            scores = [cell([r[f"{prefix}{s}"] for r in rs]) for s in SCORES]
            mode = "hard" if rs[0].get("hard") else "soft"
            paper = PAPER_ACC.get((rs[0].get("beta"), mode, readout)) if "beta" in rs[0] else None
            paper = "-" if paper is None else f"{paper:.2f}"
            lines.append(f"| {label} | {readout} | " + " | ".join(scores) + f" | {paper} |")
    lines += [
        "",
        "| method | train s (mean +- std) | s per epoch | epochs |",
        "| --- | --- | --- | --- |",
    ]
    for label, rs in by_label.items():
        seconds = [r["train_seconds"] for r in rs]
        spread = statistics.stdev(seconds) if len(seconds) > 1 else 0.0
        per_epoch = statistics.mean(r["train_seconds"] / r["epochs"] for r in rs)
        lines.append(
            f"| {label} | {statistics.mean(seconds):.1f} +- {spread:.1f} | {per_epoch:.3f} | "
            f"{rs[0]['epochs']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--pretrain-epochs", type=int, default=50)
    parser.add_argument("--betas", nargs="+", type=float, default=[0.1, 0.2, 0.3, 0.4, 0.5])
    parser.add_argument("--samples", type=int, default=10, help="importance samples (log p(x))")
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=["table3", "variants", "comparators"],
        default=["table3", "variants", "comparators"],
        help="which rows to run: the beta sweep, the three forms at beta = 1, VAE and VaDE",
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=VARIANTS,
        default=list(VARIANTS),
        help="which of the three forms at beta = 1 the `variants` part runs",
    )
    parser.add_argument("--modes", nargs="+", choices=["soft", "hard"], default=["soft", "hard"])
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="MVAE recipe arguments for every MVAE run, e.g. std_annealing=false",
    )
    parser.add_argument("--restarts", type=int, default=1, help="starts per MVAE run (1: none)")
    parser.add_argument("--json", default="benchmarks/results/mvae_digits.json")
    parser.add_argument("--report", help="print the tables of a finished JSON file and exit")
    args = parser.parse_args()
    args.overrides = {k: parse_value(v) for k, v in (item.split("=", 1) for item in args.set)}
    if args.report:
        print(report(json.loads(Path(args.report).read_text())["runs"]))
        return

    header = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads)",
        "args": vars(args),
    }
    print(header, flush=True)
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    results = {**header, "runs": []}
    cache: dict = {}
    for label, name, options in configurations(args):
        for seed in args.seeds:
            if name.startswith("mvae"):
                metrics = train_mvae(name, seed, options, args, cache)
            else:
                metrics = train_comparator(name, seed, args)
            results["runs"].append({"label": label, "recipe": name, **options, **metrics})
            path.write_text(json.dumps(results, indent=1))
            print(
                f"  {label} seed {seed}: "
                + ", ".join(
                    f"{k} {metrics[k]:.3f}"
                    for k in ("gmm_acc", "acc", "train_seconds")
                    if k in metrics
                ),
                flush=True,
            )
    print(report(results["runs"]))


if __name__ == "__main__":
    main()
