"""Test log p(x) with enumerated sites summed exactly versus sampled, on the same trained weights.

For each recipe whose guide enumerates a discrete site (``gmvae``, ``gmvae-meanfield``, ``m2``,
``mvae``, ``mvae-em2 --beta 0.3``, ``cpvae --estimator enum``) and ``vae`` as a continuous
reference, trains once per seed on digits at the recipe's defaults (runs kept under ``--runs``
and reused), then scores the very same weights with

- *before*: the estimator that samples y from q(y | x) (``enumerate_sites=False``; with
  ``--before FILE``, a copy of the earlier ``pyromix/evaluate.py``, checked to agree);
- *after*: y summed exactly (the default).

It reports the test log p(x) at S = ``--samples`` (1000) with the evaluation time of each, and,
for ``--curve-seeds``, the smallest S from which the estimate stays within 0.05 nats of its
S = ``--reference`` (10,000) value on the first ``--curve-points`` test points (the S-prefixes
of one set of draws).

    nice -n 10 env OMP_NUM_THREADS=1 python benchmarks/exact_enumeration.py \\
        [--seeds 0 1 2] [--recipes gmvae m2 ...] [--runs /tmp/exact_enum] \\
        [--before /tmp/evaluate_before.py] [--json benchmarks/results/exact_enumeration.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import time
from pathlib import Path

import pyro
import torch

from pyromix.evaluate import eval_mode, log_likelihood
from pyromix.importance import chunk_sizes, importance_weights
from pyromix.runs import load_run, train_recipe

RECIPES = {
    "gmvae": {},
    "gmvae-meanfield": {},
    "m2": {},
    "mvae": {},
    "mvae-em2": {"beta": 0.3},
    "cpvae": {"estimator": "enum"},
    "vae": {},
}
GRID = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
# The models of the benchmarks page's digits log p(x) rows: no site enumerated in their guides.
UNCHANGED = {
    "vae": {},
    "iwae": {},
    "mog": {},
    "vampprior": {},
    "cpvae": {"estimator": "gumbel"},
    "hvp": {},
    "iop": {},
    "flow": {"binarize": "dynamic"},
    "vae --guide iaf": {"guide": "iaf"},
    "vae --prior flow": {"prior": "flow"},
}
TOLERANCE = 0.05


def _label(name: str) -> str:
    extra = " ".join(f"--{k} {v}" for k, v in RECIPES[name].items())
    return f"{name} {extra}".strip()


def _run(name: str, seed: int, root: Path):
    out = root / f"{name}-s{seed}"
    done = out / "trained"  # a checkpoint alone may be an interrupted run's
    if done.exists():
        return load_run(out), 0.0
    started = time.perf_counter()
    train_recipe(name, "digits", out=out, seed=seed, progress=False, **RECIPES[name])
    done.touch()
    return load_run(out), time.perf_counter() - started


def _hidden(run):
    batch = run.dataset.test.batch(slice(None))
    return batch.y, batch.y_mask


def _scored(run, samples: int, estimator) -> tuple[float, float]:
    pyro.set_rng_seed(run.args["seed"])
    y, mask = _hidden(run)
    started = time.perf_counter()
    ll = estimator(run.model, run.guide, run.dataset.test.x, samples, y=y, y_mask=mask)
    return float(ll.log_px.mean()), time.perf_counter() - started


@torch.no_grad()
def _curve(run, points: int, reference: int, exact: bool) -> dict:
    """log p(x) at every S of GRID up to ``reference``, from the prefixes of one set of draws."""
    pyro.set_rng_seed(run.args["seed"])
    y, mask = _hidden(run)
    x, y, mask = run.dataset.test.x[:points], y, mask
    if y is not None:
        y, mask = y[:points], mask[:points]
    with eval_mode(run.model, run.guide):
        log_w = torch.cat(
            [
                importance_weights(
                    run.model, run.guide, x, s, y=y, y_mask=mask, enumerate_sites=exact
                ).log_w
                for s in chunk_sizes(reference, 100)
            ]
        ).double()
    values = {
        s: float((torch.logsumexp(log_w[:s], 0) - math.log(s)).mean())
        for s in GRID
        if s <= reference
    }
    final = values[reference]
    needed = reference
    for s in sorted(values, reverse=True):
        if abs(values[s] - final) > TOLERANCE:
            break
        needed = s
    return {"values": values, "needed": needed}


def _before(path: str | None):
    """The earlier estimator: a copy of the earlier evaluate.py, or enumerate_sites=False."""
    if path is None:
        return lambda *a, **k: log_likelihood(*a, enumerate_sites=False, **k)
    spec = importlib.util.spec_from_file_location("pyromix._evaluate_before", path)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "pyromix"
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module.log_likelihood


def unchanged(before, epochs: int, samples: int) -> dict:
    """For the models without an enumerated site, whether the earlier and the present estimator
    give the very same per-point log p(x) (``torch.equal``) on a short run of each."""
    equal = {}
    for label, settings in UNCHANGED.items():
        run = train_recipe(label.split()[0], "digits", epochs=epochs, progress=False, **settings)
        y, mask = _hidden(run)
        results = []
        for estimator in (before, log_likelihood):
            pyro.set_rng_seed(run.args["seed"])
            ll = estimator(run.model, run.guide, run.dataset.test.x, samples, y=y, y_mask=mask)
            results.append(ll.log_px)
        equal[label] = bool(torch.equal(*results))
        print(f"{label:20s} same per-point log p(x) before and after: {equal[label]}", flush=True)
    return equal


def _needed(row: dict, label: str, reference: str) -> str:
    needed = row.get(f"needed_{label}")
    if needed is None:
        return "-"
    if str(needed) == reference:  # never within 0.05 before the reference itself
        curve = row[f"curve_{label}"]
        below = sorted(curve, key=int)[-2]
        return f"> {int(below):,} (still {curve[reference] - curve[below]:+.2f} to {int(reference):,})"
    return f"{needed:,}"


def table(results: dict, reference: int) -> str:
    """The rows of ``results`` as a markdown table."""
    lines = [
        "| recipe | seed | epochs | log p(x) y sampled | y summed | change | S within 0.05 "
        "nats of S = 10,000, sampled / summed | seconds at S = 1000, sampled / summed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in results.values():
        needed = " / ".join(_needed(row, label, str(reference)) for label in ("before", "after"))
        lines.append(
            f"| `{row['recipe']}` | {row['seed']} | {row['epochs']} | {row['before']:.3f} | "
            f"{row['after']:.3f} | {row['change']:+.3f} | {needed} | "
            f"{row['seconds_before']:.0f} / {row['seconds_after']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--runs", default="/tmp/exact_enum", help="where trained runs are kept")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--reference", type=int, default=10000)
    parser.add_argument("--curve-points", type=int, default=20)
    parser.add_argument("--curve-seeds", type=int, nargs="*", default=[0])
    parser.add_argument("--before", help="a copy of the earlier pyromix/evaluate.py")
    parser.add_argument(
        "--check-before", action="store_true", help="also score with enumerate_sites=False"
    )
    parser.add_argument("--json", default="benchmarks/results/exact_enumeration.json")
    parser.add_argument(
        "--unchanged",
        type=int,
        metavar="EPOCHS",
        help="instead: train the models without an enumerated site for EPOCHS epochs and check "
        "that the two estimators agree exactly",
    )
    parser.add_argument("--table", action="store_true", help="print --json as markdown and exit")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(Path(args.json).read_text()), args.reference))
        return
    if args.unchanged:
        equal = unchanged(_before(args.before), args.unchanged, args.samples)
        sys.exit(0 if all(equal.values()) else 1)
    path = Path(args.json)
    results = json.loads(path.read_text()) if path.exists() else {}
    before = _before(args.before)
    for seed in args.seeds:
        for name in args.recipes:
            key = f"{_label(name)} / seed {seed}"
            if key in results:
                continue
            run, train_seconds = _run(name, seed, Path(args.runs))
            old, old_s = _scored(run, args.samples, before)
            new, new_s = _scored(run, args.samples, log_likelihood)
            row = {
                "recipe": _label(name),
                "seed": seed,
                "epochs": run.history.epochs,
                "train_seconds": round(train_seconds, 1),
                "before": old,
                "after": new,
                "change": new - old,
                "seconds_before": round(old_s, 2),
                "seconds_after": round(new_s, 2),
            }
            if args.check_before:  # the copy and enumerate_sites=False agree
                row["sampled_now"] = _scored(run, args.samples, _before(None))[0]
            if seed in args.curve_seeds:
                for label, exact in (("before", False), ("after", True)):
                    curve = _curve(run, args.curve_points, args.reference, exact)
                    row[f"curve_{label}"] = curve["values"]
                    row[f"needed_{label}"] = curve["needed"]
            results[key] = row
            print(json.dumps(row), flush=True)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(results, indent=1) + "\n")
    for name in args.recipes:
        rows = [r for r in results.values() if r["recipe"] == _label(name)]
        if rows:
            changes = [r["change"] for r in rows]
            mean = sum(changes) / len(changes)
            print(f"{_label(name):28s} mean change {mean:+.3f} nats over {len(rows)} seed(s)")


if __name__ == "__main__":
    main()
