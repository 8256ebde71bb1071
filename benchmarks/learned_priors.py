"""Learned priors (Lavda et al. 2020): Table 1 on digits and the 1-D mixture experiment of 5.1.

``table1``: negative test ELBO and importance-sampled negative log-likelihood of VAE, MG
(``mog``), VP (``vampprior``), CP (``cpvae``) and HVAE + VP (``hvp``, z1 and z2 both of the
latent size) with K prior components / categories in
``--ks`` on binarised digits, every model with the paper's shared settings (latent 40, two gated
hidden layers of 300, Adam 5e-4, batch 100, KL warm-up over the first quarter of the run), plus
CP-VAE's unsupervised ACC/NMI of argmax q(c | x) (CP-VAE with its default warm start, see
docs/models.md). Mean +- std over seeds.

``mixture1d``: on 0.5 N(0.3, 0.05^2) + 0.5 N(0.7, 0.05^2) (5,000 points per split, 30 epochs),
the 1-Wasserstein distance between generated samples x ~ p(x | z, c) and held-out data, for VAE
and for MG, VP and CP-VAE with K = 2 and K = 150; every mixture draws its component from the
aggregated posterior q(c) (eq. 14), and CP-VAE (cold-started, as in the paper's 5.1), for
comparison, also from the uniform prior;
for CP-VAE the number of categories some training point uses (argmax q(c | x)) and the mass
q(c) puts on the unused ones.

    python benchmarks/learned_priors.py table1 [--ks 10 50] [--seeds 0 1 2] [--epochs 200]
    python benchmarks/learned_priors.py mixture1d [--ks 2 150] [--seeds 0 1 2]

Both take ``--models`` (a subset of vae mog vampprior cpvae hvp) and ``--json PATH``, which is
rewritten after every run; with ``--resume`` a call keeps the runs an interrupted call with the
same settings saved there and trains only the rest.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics

import pyro
import torch
from scipy.stats import wasserstein_distance

from pyromix.runs import aggregated_posterior, cluster_probabilities, evaluate_run, train_recipe

PAPER = {"latent_dim": 40, "hidden": [300, 300], "gated": True, "lr": 5e-4, "warmup": None}
MODELS = ["vae", "mog", "vampprior", "cpvae", "hvp"]
SIZE_ARGUMENT = {
    "mog": "components",
    "vampprior": "components",
    "cpvae": "clusters",
    "hvp": "components",
}
TOY = {
    "latent_dim": 2,
    "hidden": [64, 64],
    "lr": 3e-3,
    "epochs": 30,
    "patience": None,
    "warmup": None,
}
GENERATED = 10_000


def _mean_std(values: list[float], digits: int = 3) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} +- {spread:.{digits}f}"


def _save(args: argparse.Namespace, results: dict) -> None:
    """Write the runs so far, so an interrupted benchmark keeps what it measured."""
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": vars(args), "results": results}, f, indent=2)


def _resumed(args: argparse.Namespace) -> dict:
    """The runs an earlier, interrupted call with the same settings saved to ``--json``."""
    if not (args.resume and args.json and os.path.exists(args.json)):
        return {}
    with open(args.json) as f:
        saved = json.load(f)
    same = ("experiment", "epochs", "samples")
    if any(saved["command"].get(key) != getattr(args, key) for key in same):
        raise SystemExit(f"--resume: {args.json} was written with other {', '.join(same)}")
    return saved["results"]


def _pending(args: argparse.Namespace, results: dict, label: str) -> list[int]:
    """Seeds of ``label`` still to run; runs of seeds not asked for are dropped."""
    done = {run["seed"]: run for run in results.get(label, []) if run["seed"] in args.seeds}
    results[label] = [done[seed] for seed in args.seeds if seed in done]
    return [seed for seed in args.seeds if seed not in done]


def _configurations(args: argparse.Namespace) -> list[tuple[str, str, dict]]:
    rows = [("VAE", "vae", {})]
    for k in args.ks:
        rows += [
            (f"{label} K={k}", name, {SIZE_ARGUMENT[name]: k})
            for label, name in (
                ("MG", "mog"),
                ("VP", "vampprior"),
                ("CP", "cpvae"),
                ("HVAE+VP", "hvp"),
            )
        ]
    return [row for row in rows if row[1] in args.models]


def table1(args: argparse.Namespace) -> dict:
    results = _resumed(args)
    for label, name, size in _configurations(args):
        for seed in _pending(args, results, label):
            settings = {**PAPER, "epochs": args.epochs}
            run = train_recipe(name, "digits", seed=seed, progress=False, **settings, **size)
            results[label].append(evaluate_run(run, args.samples))
            keys = ("test_elbo", "test_log_likelihood", "acc", "nmi", "epochs")
            print(label, seed, {k: results[label][-1].get(k) for k in keys}, flush=True)
            _save(args, results)
    print(f"\ndigits (dynamically binarised) test split, S = {args.samples}, seeds {args.seeds}")
    print(
        f"{'model':<14}"
        + "".join(f"{h:>20}" for h in ("-ELBO", "-log p(x)", "ACC", "NMI", "epochs"))
    )
    for label, runs in results.items():
        cells = [
            _mean_std([-r["test_elbo"] for r in runs]),
            _mean_std([-r["test_log_likelihood"] for r in runs]),
        ]
        cells += [
            _mean_std([r[k] for r in runs]) if "acc" in runs[0] else "" for k in ("acc", "nmi")
        ]
        cells.append(_mean_std([r["epochs"] for r in runs]))
        print(f"{label:<14}" + "".join(f"{c:>20}" for c in cells))
    return results


@torch.no_grad()
def _w1(run, categories: str, held_out) -> float:
    """W1 between ``GENERATED`` draws, c from q(c) or p(c), and the held-out points."""
    pyro.set_rng_seed(run.args["seed"])
    weights = aggregated_posterior(run) if categories == "posterior" else None
    generated = run.model.generate(GENERATED, mean=False, weights=weights).squeeze(-1)
    return float(wasserstein_distance(generated.numpy(), held_out))


def mixture1d(args: argparse.Namespace) -> dict:
    results = _resumed(args)
    for label, name, size in _configurations(args):
        for seed in _pending(args, results, label):
            cold = {"warm_start": False} if name == "cpvae" else {}  # Lavda et al.'s 5.1
            run = train_recipe(name, "mixture1d", seed=seed, progress=False, **TOY, **size, **cold)
            held_out = run.dataset.test.x.squeeze(-1).cpu().numpy()
            row = {"seed": seed, "w1": _w1(run, "posterior", held_out)}
            if name == "cpvae":
                row["w1_prior"] = _w1(run, "prior", held_out)
                q_c = aggregated_posterior(run)
                used = cluster_probabilities(run, run.dataset.train.x).argmax(-1).unique()
                unused = torch.ones_like(q_c, dtype=torch.bool)
                unused[used] = False
                row.update(used=len(used), unused_mass=float(q_c[unused].sum()))
            results[label].append(row)
            print(label, seed, row, flush=True)
            _save(args, results)
    print(f"\nmixture1d: W1(generated, held-out test), {GENERATED} draws, seeds {args.seeds}")
    print(f"{'model':<10}{'W1 (q(c))':>20}{'W1 (p(c))':>20}{'used':>20}{'unused mass':>22}")
    for label, rows in results.items():
        cells = [_mean_std([r["w1"] for r in rows], 4)]
        for key, digits in (("w1_prior", 4), ("used", 1), ("unused_mass", 3)):
            cells.append(_mean_std([r[key] for r in rows], digits) if key in rows[0] else "")
        print(f"{label:<10}" + "".join(f"{c:>20}" for c in cells))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", choices=["table1", "mixture1d"])
    parser.add_argument("--ks", nargs="+", type=int)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--samples", type=int, default=1000, help="importance samples (table1)")
    parser.add_argument("--epochs", type=int, default=200, help="training epochs (table1)")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=MODELS)
    parser.add_argument("--json", help="also write every run's numbers here")
    parser.add_argument(
        "--resume", action="store_true", help="keep the runs already saved in --json, run the rest"
    )
    args = parser.parse_args()
    args.ks = args.ks or ([10, 50] if args.experiment == "table1" else [2, 150])
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads)"
    )
    (table1 if args.experiment == "table1" else mixture1d)(args)


if __name__ == "__main__":
    main()
