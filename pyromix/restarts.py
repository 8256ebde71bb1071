"""Restarts: several initialisations, each trained briefly, the best by validation objective
trained to the end (as ``n_init`` in scikit-learn's ``KMeans`` and ``GaussianMixture``).

Mixture VAEs are sensitive to their start: one seed's q(y | x) settles on ten clusters, the
next on seven. A start is everything the seed decides: the networks' initial weights, the
recipe's initialisation (autoencoder pretraining and the GMM on its codes, in full), and the
order of the mini-batches. Each of R starts trains for a short budget, :func:`restart_epochs`
(a tenth of the run's epochs, at least one), on the full run's schedules (KL warm-up, std
annealing), so every start is scored at the same epoch under the same objective. The start
with the lowest validation loss (the negative objective on the validation split, never the
labels) among the starts that did not collapse then trains on to the run's ``epochs`` from its
checkpoint, exactly as if it had never stopped. The starts' scores go into the run's
``metrics.json`` under ``restarts``.

Why the collapse check: the validation loss ranks how well a start fits the data, not its
clusters, and a start whose q(y | x) sends every point to three of ten clusters can fit the data
as well as a healthy one (measured on digits: selecting by the loss alone once kept a collapsed
``gmvae-meanfield`` start). So each start's label-free collapse diagnostics
(:mod:`pyromix.diagnostics`: effective clusters of argmax q(y | x), active latent units) are
computed on the validation split, and a start they flag is chosen only when every start is
flagged.

Start 0 is the run's own seed, so one start is the plain run; start r > 0 takes a seed derived
from the run's seed and r (:func:`start_seeds`), so the result is the same given the seed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyro

import torch

from .diagnostics import active_units, cluster_usage, collapse_warnings
from .recipes import get_recipe
from .rundir import CHECKPOINT
from .runs import Run, cluster_probabilities, train_run
from .train import History
from .schema import Interval, check_value

__all__ = ["restart_epochs", "start_seeds", "start_diagnostics", "choose_start", "train_restarts"]


def restart_epochs(epochs: int) -> int:
    """The epochs each start trains before the selection: a tenth of ``epochs``, at least 1."""
    return max(1, epochs // 10)


def start_seeds(seed: int, restarts: int) -> list[int]:
    """The seed of each start: ``seed`` itself, then seeds derived from ``(seed, r)`` by numpy's
    ``SeedSequence``, which do not collide with the neighbouring seeds of other runs.

    Example:
        >>> s = start_seeds(0, 3)
        >>> s[0], len(set(s)), s == start_seeds(0, 3), s[1] in start_seeds(1, 3)
        (0, 3, True, False)
    """
    derived = (np.random.SeedSequence([seed, r]).generate_state(1)[0] for r in range(1, restarts))
    return [seed, *map(int, derived)]


def start_diagnostics(run: Run) -> dict[str, Any]:
    """The collapse diagnostics of a (briefly) trained start on its validation split, without
    labels: ``effective_clusters`` and ``active_units`` where the run has a cluster readout or a
    latent mean, and ``warnings`` (:func:`pyromix.diagnostics.collapse_warnings`)."""
    x = run.dataset.val.x
    found: dict[str, Any] = {}
    with torch.no_grad():
        probs = cluster_probabilities(run, x)
        if probs is not None:
            found |= cluster_usage(probs.argmax(-1).cpu(), probs.shape[-1])
        if hasattr(run.guide, "latent_mean") and len(x) > 1:
            found |= active_units(run.guide.latent_mean(x))
    kept = {k: found[k] for k in ("effective_clusters", "active_units") if k in found}
    return {**kept, "warnings": collapse_warnings(found)}


def choose_start(records: list[dict[str, Any]]) -> int:
    """The index of the start to train on: the lowest ``val_loss`` among the starts without
    collapse ``warnings``, or among all starts when every one has them.

    Example:
        >>> choose_start([{"val_loss": 1.0, "warnings": ["collapsed mixture: ..."]},
        ...               {"val_loss": 2.0, "warnings": []}])
        1
    """
    healthy = [r for r, record in enumerate(records) if not record.get("warnings")]
    candidates = healthy or range(len(records))
    return min(candidates, key=lambda r: records[r]["val_loss"])


def _start(run: Run, seed: int) -> Run:
    """An untrained copy of ``run`` built from ``seed`` (prepare_recipe's seeding)."""
    args = {**run.args, "seed": seed}
    pyro.set_rng_seed(seed)
    model, guide = get_recipe(run.name).build(args)
    return Run(run.name, args, model, guide, run.dataset, History())


def train_restarts(
    run: Run,
    restarts: int = 1,
    *,
    out: str | os.PathLike | None = None,
    epochs: int | None = None,
    **options: Any,
) -> Run:
    """Train ``restarts`` starts of the prepared ``run`` briefly and the best one to the end.

    Arguments:
        run: a prepared, untrained run (:func:`pyromix.runs.prepare_recipe`).
        restarts: R, the number of starts; 1 trains ``run`` as :func:`pyromix.runs.train_run`.
        out: the run directory; the winner's checkpoint ends there. The starts train in a
            temporary folder.
        epochs: the epochs of each start before the selection; default :func:`restart_epochs`.
        **options: :func:`pyromix.runs.train_run`'s (``progress``, ``devices``, ...).

    Returns:
        The winning start (:func:`choose_start`), trained to ``run.args["epochs"]``, with
        ``run.args["seed"]`` the run's seed, ``run.args["start_seed"]`` the start's, and
        ``restarts`` recording every start's seed, validation loss, collapse diagnostics
        (:func:`start_diagnostics`) and seconds, and which was chosen.

    Example:
        >>> run = train_restarts(prepare_recipe("gmvae", epochs=20), 3)  # doctest: +SKIP
        >>> [s["val_loss"] for s in run.restarts]  # doctest: +SKIP
    """
    check_value("restarts", restarts, Interval(int, 1))
    if restarts == 1:
        return train_run(run, out=out, **options)
    recipe = get_recipe(run.name)
    if not recipe.restore_best:
        raise ValueError(
            f"restarts: the {run.name} recipe's validation loss does not rank its weights "
            "(it keeps the last epoch's), so it cannot choose between starts; use 1"
        )
    if run.history.epochs or options.pop("resume", False):
        raise ValueError("restarts: a resumed run continues its own start; use 1 with --resume")
    total = run.args["epochs"]
    budget = restart_epochs(total) if epochs is None else epochs
    check_value("epochs", budget, Interval(int, 1, total))
    seed = run.args["seed"]
    with tempfile.TemporaryDirectory(prefix="pyromix-restarts-") as tmp:
        starts, records = [], []
        for r, start_seed in enumerate(start_seeds(seed, restarts)):
            start = run if r == 0 else _start(run, start_seed)
            begun = time.perf_counter()
            folder = Path(tmp) / f"start-{r}"
            folder.mkdir()
            train_run(start, out=folder, stop_after=budget, **options)
            starts.append(start)
            records.append(
                {
                    "start": r,
                    "seed": start_seed,
                    "epochs": start.history.epochs,
                    "val_loss": start.history.val_loss[-1],
                    **start_diagnostics(start),
                    "seconds": time.perf_counter() - begun,
                }
            )
        chosen = choose_start(records)
        winner = starts[chosen]
        for record in records:
            record["chosen"] = record["start"] == chosen
        winner.args.update(seed=seed, start_seed=records[chosen]["seed"])
        where = Path(tmp) / f"start-{chosen}" if out is None else Path(out)
        if out is not None:
            where.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(tmp) / f"start-{chosen}" / CHECKPOINT, where / CHECKPOINT)
        train_run(winner, out=where, resume=True, **options)
    winner.restarts = records
    return winner
