"""The implicit optimal prior (Takahashi et al. 2019) against the VAE and the VampPrior: OneHot, digits, speed.

Three measurements, each printed as a table (and all written with ``--json``):

1. OneHot (Takahashi et al. 2019, 5.3, Fig. 2): validation ELBO of ``vae``, ``vampprior`` (K = 50, as 5.2)
   and ``iop`` over seeds, against the optimum -ln 4, estimated with S importance samples (the
   mean log weight), with the validation log p(x). Each trains all its epochs and keeps the final
   weights. For ``iop`` the ELBO contains E_q[T], so it is the paper's estimate; it is given as
   trained, after refitting T to the final encoder (100 updates of J2 steps), and normalised:
   minus the log normaliser log E_N[exp T] of the estimated prior, which makes it the ELBO of the
   normalised prior N(z) exp(T(z)) / Z, a proper density.
2. Digits (Takahashi et al. 2019, Table 2 form): test log p(x) (S importance samples), mean +- std over seeds,
   each recipe with its defaults (what ``pyromix fit MODEL --data digits`` trains: early stopping
   on the validation loss, best weights) but at most ``--digits-epochs`` epochs; for ``iop`` also
   the log normaliser of its estimated prior and the log p(x) of the normalised prior.
3. Training time per epoch of ``iop`` against ``vampprior`` with K = 500 (the paper: 2.83x
   faster on MNIST), as a ratio measured in one process with the epochs interleaved, so that
   load from other processes hits both alike: on digits with the recipes' defaults, and on
   MNIST-shaped data (784-d binary, 40-d latent, two gated layers of 500, Takahashi et al. (2019) 5.2).

    python benchmarks/implicit_prior.py [--seeds 0 1 2] [--onehot-epochs 150] [--onehot-setup paper]
        [--digits-epochs 100] [--samples 1000] [--repeats 5] [--skip onehot digits timing]
        [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time

import numpy as np
import pyro
import torch

from pyromix.evaluate import log_likelihood
from pyromix.infer import KLWarmup
from pyromix.recipes import get_recipe
from pyromix.runs import evaluate_run, prepare_recipe, train_recipe
from pyromix.train import fit

# OneHot: small networks, warm-up (5.2) and a high learning rate, to converge in minutes instead
# of 1,000 epochs; the implicit prior with J2 = 3 discriminator steps on 300 draws, no dropout.
ONEHOT_LR, ONEHOT_WARMUP, REFIT_UPDATES = 1e-2, 20, 100
# --onehot-setup paper: Takahashi et al. (2019) 5.2's own setup instead (gated 500-500 networks, lr 1e-3 from
# its range [1e-4, 1e-3], warm-up over the first 100 epochs); run it with --onehot-epochs 1000.
# --onehot-setup small: that lr and warm-up on the small networks.
ONEHOT_SETUPS = {
    "fast": {"hidden": [32, 32], "lr": ONEHOT_LR, "warmup": ONEHOT_WARMUP},
    "paper": {"hidden": [500, 500], "gated": True, "lr": 1e-3, "warmup": 100},
    # the paper's optimiser settings on the small networks (its 500-500 networks take ~30 min
    # per iop run on a shared 2-core machine); fast's lr 1e-2 can diverge within 1,000 epochs
    "small": {"hidden": [32, 32], "lr": 1e-3, "warmup": 100},
}
ONEHOT_RECIPES = {
    "vae": {},
    "vampprior": {"components": 50},
    "iop": {"disc_steps": 3, "disc_dropout": 0.0, "disc_batch_size": 300},
}
DIGITS_RECIPES = ("vae", "vampprior", "iop")
# MNIST-shaped timing: Takahashi et al. (2019) 5.2's architecture on random binary 784-d points.
MNIST_SHAPE = {"latent_dim": 40, "hidden": [500, 500], "gated": True}


def mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):8.3f} +- {spread:.3f}"


def print_table(columns: dict[str, str], results: dict[str, list[dict]]) -> None:
    """One row per model: mean +- std over seeds of each column it has; ≈ marks estimated priors."""
    print(f"{'model':<10}" + "".join(f"{title:>18}" for title in columns.values()))
    for name, records in results.items():
        mark = "≈" if records[0]["prior_is_approximate"] else " "
        cells = [
            mean_std([float(r[key]) for r in records]) if key in records[0] else "-"
            for key in columns
        ]
        print(f"{name:<9}{mark}" + "".join(f"{cell:>18}" for cell in cells))


def _validation_elbo(run, seed: int, samples: int) -> tuple[float, float]:
    pyro.set_rng_seed(seed)
    ll = log_likelihood(run.model, run.guide, run.dataset.val.x, samples)
    return float(ll.elbo.mean()), float(ll.log_px.mean())


def onehot(seeds: list[int], epochs: int, samples: int, setup: str = "fast") -> dict:
    results: dict = {name: [] for name in ONEHOT_RECIPES}
    networks = {k: v for k, v in ONEHOT_SETUPS[setup].items() if k not in ("lr", "warmup")}
    for name, overrides in ONEHOT_RECIPES.items():
        for seed in seeds:
            run = prepare_recipe(name, "onehot", seed=seed, **networks, **overrides)
            recipe = get_recipe(name)
            hooks = recipe.step_hooks(run.model, run.guide, run.dataset, run.args)
            history = fit(
                run.model,
                run.guide,
                run.dataset,
                recipe.objective(run.args),
                epochs=epochs,
                lr=ONEHOT_SETUPS[setup]["lr"],
                kl_weight=KLWarmup(ONEHOT_SETUPS[setup]["warmup"]),
                step_hooks=hooks,
                restore_best=False,
                seed=seed,
                progress=False,
            )
            elbo, log_px = _validation_elbo(run, seed, samples)
            record = {"seed": seed, "val_elbo": elbo, "val_log_likelihood": log_px}
            record["train_seconds"] = sum(history.seconds)
            record["prior_is_approximate"] = bool(hooks)
            if hooks:
                record["prior_log_normalizer"] = run.model.log_normalizer()
                for hook in hooks:
                    for _ in range(REFIT_UPDATES):
                        hook.update()
                refit, refit_log_px = _validation_elbo(run, seed, samples)
                log_z = run.model.log_normalizer()
                record.update(
                    val_elbo_refit=refit,
                    val_log_likelihood_refit=refit_log_px,
                    prior_log_normalizer_refit=log_z,
                    val_elbo_normalized=refit - log_z,
                )
            record["distance_from_optimum"] = abs(elbo + math.log(4))
            results[name].append(record)
            print(f"{name} seed {seed}: val ELBO {elbo:.4f}, {record['train_seconds']:.0f} s", flush=True)
    print(f"\nOneHot validation split, {setup} setup, {epochs} epochs, S = {samples}, seeds {seeds}")
    print(f"optimum -ln 4 = {-math.log(4):.3f}; mean +- std over seeds")
    columns = {
        "val_elbo": "ELBO",
        "val_log_likelihood": "log p(x)",
        "prior_log_normalizer": "log Z",
        "val_elbo_refit": "ELBO, T refit",
        "prior_log_normalizer_refit": "log Z, T refit",
        "val_elbo_normalized": "ELBO - log Z",
        "distance_from_optimum": "|ELBO + ln 4|",
        "train_seconds": "train s",
    }
    print_table(columns, results)
    return results


def digits(seeds: list[int], samples: int, epochs: int) -> dict:
    results = {}
    for name in DIGITS_RECIPES:
        results[name] = [
            evaluate_run(
                train_recipe(name, "digits", seed=seed, epochs=epochs, progress=False), samples
            )
            for seed in seeds
        ]
    print(f"\ndigits test split, defaults, <= {epochs} epochs, S = {samples}, seeds {seeds}")
    columns = {
        "test_log_likelihood": "log p(x)",
        "prior_log_normalizer": "log Z",
        "test_log_likelihood_normalized": "log p(x) - log Z",
        "test_elbo": "ELBO",
        "pareto_k_share_above_0.7": "k>0.7",
        "epochs": "epochs",
        "train_seconds": "train s",
    }
    print_table(columns, results)
    return results


def _epoch_seconds(run, objective, hooks) -> float:
    history = fit(
        run.model,
        run.guide,
        run.dataset,
        objective,
        epochs=1,
        batch_size=run.args["batch_size"],
        lr=run.args["lr"],
        step_hooks=hooks,
        seed=None,
        progress=False,
    )
    return history.seconds[0]


def timing(repeats: int) -> dict:
    rng = np.random.default_rng(0)
    mnist_shaped = (rng.random((2500, 784)) < 0.13).astype(np.float32)  # MNIST's mean intensity
    settings = {
        "digits (recipe defaults)": ("digits", {}),
        "MNIST-shaped (5.2 networks)": (mnist_shaped, MNIST_SHAPE),
    }
    results = {}
    print(f"\nseconds per training epoch, iop vs vampprior K = 500, {repeats} interleaved repeats")
    for label, (data, overrides) in settings.items():
        pair = {}
        for name, extra in (("iop", {}), ("vampprior", {"components": 500})):
            run = prepare_recipe(name, data, **overrides, **extra)
            recipe = get_recipe(name)
            hooks = recipe.step_hooks(run.model, run.guide, run.dataset, run.args)
            pair[name] = (run, recipe.objective(run.args), hooks)
        seconds = {name: [] for name in pair}
        for _ in range(repeats):
            for name, (run, objective, hooks) in pair.items():
                seconds[name].append(_epoch_seconds(run, objective, hooks))
        ratios = [v / i for i, v in zip(seconds["iop"], seconds["vampprior"])]
        q1, q3 = np.percentile(ratios, [25, 75])
        results[label] = {**seconds, "vampprior_over_iop": ratios}
        print(
            f"{label:<28} iop {statistics.median(seconds['iop']):7.2f} s, vampprior K=500 "
            f"{statistics.median(seconds['vampprior']):7.2f} s: vampprior / iop = "
            f"{statistics.median(ratios):.2f} (IQR {q1:.2f}-{q3:.2f})"
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--onehot-epochs", type=int, default=150)
    parser.add_argument("--onehot-setup", choices=list(ONEHOT_SETUPS), default="fast")
    parser.add_argument("--digits-epochs", type=int, default=100)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip", nargs="*", default=[], choices=["onehot", "digits", "timing"])
    parser.add_argument("--json", help="also write every result here")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
    )
    started = time.perf_counter()
    results: dict = {"command": vars(args)}
    if "onehot" not in args.skip:
        results["onehot"] = onehot(
            args.seeds, args.onehot_epochs, args.samples, args.onehot_setup
        )
    if "digits" not in args.skip:
        results["digits"] = digits(args.seeds, args.samples, args.digits_epochs)
    if "timing" not in args.skip:
        results["timing"] = timing(args.repeats)
    print(f"\nfinished in {time.perf_counter() - started:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
