"""The GAN on digits at the practical's settings (Soons 2020, 2.3): mode coverage and class entropy.

For each seed, ``pyromix``'s ``gan`` recipe with its defaults (z 32, G 128-256-512 with dropout
0.1, D 512-256 with dropout 0.3, Adam 1e-3 (0.5, 0.999; the practical's 2e-4 with ``--lr
0.0002``), batch 128, 250 epochs) is trained on
digits' [0, 1] intensities; 1,000 generations are labelled by a logistic regression trained on
the training split, giving the classes hit, the classes holding at least 1 % of the generations,
and the entropy of the class histogram (log 10 = 2.303 for a uniform spread). Each run's
directory (``--out DIR/seed-S``) holds ``stages.png``: G at one fixed z after epochs 1, 10 and
the last (the practical's Fig. 8), and ``adversarial_curves.png``.

    python benchmarks/gan_digits.py [--seeds 0 1 2] [--epochs 250] [--lr 0.001] [--out DIR]
        [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import torch
from learned_priors import _mean_std, _pending, _resumed, _save

from pyromix.runs import evaluate_run, train_recipe, write_report

KEYS = (
    "classes_hit",
    "classes_hit_1pct",
    "class_entropy",
    "class_histogram",
    "classifier_test_accuracy",
    "train_seconds",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=250)
    parser.add_argument("--lr", type=float, help="learning rate of G and D (default the recipe's)")
    parser.add_argument("--out", default="runs/gan_digits", help="folder of the run directories")
    parser.add_argument("--json", help="also write every run's numbers here")
    parser.add_argument("--resume", action="store_true", help="keep the runs saved in --json")
    args = parser.parse_args()
    args.experiment, args.samples = "gan_digits", None
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), load {os.getloadavg()}",
        flush=True,
    )
    results = _resumed(args)
    label = "gan"
    for seed in _pending(args, results, label):
        out = Path(args.out) / f"seed-{seed}"
        lr = {} if args.lr is None else {"lr": args.lr}
        run = train_recipe("gan", "digits", seed=seed, epochs=args.epochs, progress=False, **lr)
        metrics = evaluate_run(run)
        write_report(run, metrics, out)
        results[label].append({"seed": seed, **{k: metrics[k] for k in KEYS}})
        print(label, results[label][-1], f"load {os.getloadavg()}", flush=True)
        _save(args, results)
    runs = results[label]
    print(f"\ndigits, {args.epochs} epochs, seeds {args.seeds}, load {os.getloadavg()}")
    for key, digits in (
        ("classes_hit", 1),
        ("classes_hit_1pct", 1),
        ("class_entropy", 3),
        ("classifier_test_accuracy", 3),
    ):
        print(f"{key:<26}{_mean_std([r[key] for r in runs], digits):>20}")


if __name__ == "__main__":
    main()
