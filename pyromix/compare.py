"""Bayesian model comparison by held-out evidence: trained runs ranked by test log p(x).

Each run's test log-likelihood is importance sampled per point, so two models are compared on the
very same points: the standard error of a difference of means is that of the per-point
differences (paired), far smaller than the two means' errors combined when the models agree on
which points are hard.

References:
    Burda, Grosse & Salakhutdinov (2016), the importance-sampled log p(x).
    Vehtari, Gelman & Gabry (2017), paired standard errors of differences in expected log
    predictive density; Vehtari et al. (2024), PSIS Pareto k > 0.7 flags unreliable estimates.
    Takahashi et al. (2019), Table 2 (test log-likelihoods; "≈" marks the implicit prior's estimated density).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .evaluate import LogLikelihood
from .footing import footing
from .run_config import read_config, version_changes
from .rundir import CHECKPOINT
from .runs import evaluate_points, load_run, load_run_checkpoint

__all__ = [
    "SAME_DATA_KEYS",
    "footing",  # re-exported from pyromix.footing
    "compare_points",
    "evaluate_runs",
    "compare_runs",
    "format_comparison",
]

# What makes two runs' test points the same: the data, its split and its preprocessing; and what
# their log p(x) is a log of (:func:`footing`), since a pmf and a density are not comparable.
SAME_DATA_KEYS = ("dataset", "data", "split_seed", "limit", "binarize")
CLUSTER_KEYS = ("acc", "nmi", "ari", "gmm_acc", "gmm_nmi", "gmm_ari")


def compare_points(
    names: Sequence[str],
    results: Sequence[LogLikelihood],
    extras: Sequence[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    r"""Rank models by mean held-out log p(x), with paired standard errors of the differences.

    For model m and the best model b (highest mean), with per-point estimates ``l_mi``, the
    difference is ``mean_i (l_mi - l_bi)`` and its standard error
    ``sd_i(l_mi - l_bi) / sqrt(n)`` (sample sd, ``n - 1`` in the denominator).

    Arguments:
        names: one label per model.
        results: per-point results on the same n test points, one per model.
        extras: optional extra columns per model (e.g. clustering scores).

    Returns:
        One dict per model, best first, with ``name``, ``log_likelihood``, ``diff_to_best``,
        ``diff_se``, ``elbo``, ``pareto_k_share_above_0.7`` and the extras.

    Example:
        >>> nan = torch.full((3,), float("nan"))
        >>> a = LogLikelihood(torch.tensor([-1.0, -2.0, -3.0]), torch.zeros(3), nan, 10)
        >>> b = LogLikelihood(torch.tensor([-1.5, -2.0, -3.5]), torch.zeros(3), nan, 10)
        >>> [(r["name"], round(r["diff_to_best"], 3), round(r["diff_se"], 3))
        ...  for r in compare_points(["a", "b"], [a, b])]
        [('a', 0.0, 0.0), ('b', -0.333, 0.167)]
    """
    if len(names) != len(results) or not results:
        raise ValueError(
            f"names and results: expected equally many (>= 1), got {len(names)} and {len(results)}"
        )
    points = {tuple(r.log_px.shape) for r in results}
    if len(points) != 1 or len(next(iter(points))) != 1:
        raise ValueError(f"results: expected per-point estimates of one shape (n,), got {points}")
    extras = extras if extras is not None else [{} for _ in results]
    log_px = torch.stack([r.log_px.double() for r in results])
    best = int(log_px.mean(1).argmax())
    n = log_px.shape[1]
    rows = []
    for m, (name, result, extra) in enumerate(zip(names, results, extras)):
        diff = log_px[m] - log_px[best]
        summary = result.summary()
        rows.append(
            {
                "name": name,
                "log_likelihood": summary["log_likelihood"],
                "diff_to_best": float(diff.mean()),
                "diff_se": float(diff.std() / math.sqrt(n)) if n > 1 else math.nan,
                "elbo": summary["elbo"],
                "pareto_k_share_above_0.7": summary["pareto_k_share_above_0.7"],
                **extra,
            }
        )
    return sorted(rows, key=lambda row: -row["log_likelihood"])


def _check_same_data(paths: Sequence[Path], args: Sequence[dict[str, Any]]) -> None:
    kinds = [footing(a) for a in args]
    for path, kind in zip(paths, kinds):
        if kind == "no likelihood":
            raise ValueError(
                f"runs: {str(path)!r} has no likelihood to rank by (an implicit model, a GAN); "
                "`pyromix evaluate` gives its mode coverage instead"
            )
    if any(kind != kinds[0] for kind in kinds):
        given = ", ".join(f"{str(p)!r} gives a {k}" for p, k in zip(paths, kinds))
        raise ValueError(
            f"runs: their log-likelihoods are not comparable numbers: {given} (a flow on "
            "binarised data, --binarize dynamic, ranks with Bernoulli VAEs)"
        )
    labels = [a.get("eval_labels", "hidden") for a in args]
    if any(mode != labels[0] for mode in labels):
        given = ", ".join(
            f"{str(p)!r} is scored with its test labels {m}" for p, m in zip(paths, labels)
        )
        raise ValueError(
            f"runs: their log-likelihoods are not comparable numbers: {given} (log p(x, y) or "
            "log p(x | y) against log p(x)); evaluate them alike (fit --eval-labels)"
        )
    for key in SAME_DATA_KEYS:
        values = [a.get(key) for a in args]
        if any(v != values[0] for v in values):
            given = ", ".join(f"{str(p)!r} has {v!r}" for p, v in zip(paths, values))
            raise ValueError(
                f"runs: expected runs on the same dataset and test split, but they differ in "
                f"{key}: {given}"
            )


def evaluate_runs(
    paths: Sequence[str | os.PathLike],
    num_samples: int = 1000,
    *,
    device: str = "cpu",
    data: Any = None,
) -> tuple[list[str], list[LogLikelihood], list[dict[str, Any]]]:
    """The per-point held-out log p(x) of two or more runs on their common test split.

    Every run is re-evaluated with ``num_samples`` importance samples per test point (seeded by
    its own seed, as :func:`pyromix.runs.evaluate_run`, with the test labels hidden or revealed
    as each run records). Runs on different datasets, splits, binarisations or observation
    models, or scored with their labels hidden against revealed, are refused before any
    evaluation, and runs whose evaluated footings differ (a global latent's predictive density
    against a log p(x)) after it; the message names both.

    Arguments:
        paths: two or more run directories (``pyromix fit --out DIR``).
        num_samples: importance samples S per point (>= 25 for Pareto k).
        device: where to evaluate.
        data: the data, for runs trained on an in-memory array.

    Returns:
        The names (the directories), one :class:`~pyromix.evaluate.LogLikelihood` per run, and
        one dict of extra columns per run: ``model``, ``prior_is_approximate``,
        ``prior_log_normalizer`` (estimated priors: the log of their integral, by which their
        log p(x) is inflated; else None), ``test_points`` and clustering scores where the run
        has them. :func:`compare_points` and :func:`pyromix.elpd.arviz_compare` take them.
    """
    paths = [Path(p) for p in paths]
    if len(paths) < 2:
        raise ValueError(f"runs: expected two or more run directories, got {len(paths)}")
    saved = []
    for path in paths:
        if not (path / CHECKPOINT).is_file():
            raise FileNotFoundError(
                f"run: {str(path)!r} has no {CHECKPOINT}; is it a pyromix fit --out DIR?"
            )
        saved.append(load_run_checkpoint(path / CHECKPOINT)["recipe"]["args"])
    _check_same_data(paths, saved)
    _warn_other_software(paths)
    runs = [load_run(path, device=device, data=data) for path in paths]
    for path, run in zip(paths[1:], runs[1:]):
        if not torch.equal(run.dataset.test.x, runs[0].dataset.test.x):
            raise ValueError(
                f"runs: {str(paths[0])!r} and {str(path)!r} record the same data and split but "
                "their test points differ (was the data file changed?)"
            )
    results, extras, footings = [], [], []
    for run in runs:
        metrics, result = evaluate_points(run, num_samples)
        footings.append(metrics["footing"])
        results.append(result)
        extras.append(
            {
                "model": run.name,
                "prior_is_approximate": metrics["prior_is_approximate"],
                "prior_log_normalizer": metrics.get("prior_log_normalizer"),
                "test_points": metrics["test_points"],
                **{key: metrics[key] for key in CLUSTER_KEYS if key in metrics},
            }
        )
    if any(f != footings[0] for f in footings):  # e.g. a global latent's predictive density
        given = ", ".join(f"{str(p)!r} gives {f}" for p, f in zip(paths, footings))
        raise ValueError(f"runs: their log-likelihoods are not comparable numbers: {given}")
    return [str(p) for p in paths], results, extras


def _warn_other_software(paths: Sequence[Path]) -> None:
    """One warning when the runs' config.json record different versions of Python, torch,
    Pyro or pyromix: their numbers may then differ for that reason alone."""
    configs = [(path, read_config(path)) for path in paths]
    first_path, first = next(((p, c) for p, c in configs if c is not None), (None, None))
    differing = [
        f"{str(path)!r} ({', '.join(version_changes(first, config['software']))})"
        for path, config in configs
        if config is not None and version_changes(first, config["software"])
    ]
    if differing:
        warnings.warn(
            f"runs: trained with other software than {str(first_path)!r}: {'; '.join(differing)}",
            stacklevel=3,
        )


def compare_runs(
    paths: Sequence[str | os.PathLike],
    num_samples: int = 1000,
    *,
    device: str = "cpu",
    data: Any = None,
) -> list[dict[str, Any]]:
    """Compare trained run directories on their common test split: :func:`compare_points` of
    :func:`evaluate_runs` (same arguments).

    Returns:
        The rows of :func:`compare_points`, with ``name`` the directory and the extra columns of
        :func:`evaluate_runs`.

    Example:
        >>> rows = compare_runs(["runs/vae", "runs/iop"], 1000)  # doctest: +SKIP
        >>> print(format_comparison(rows))  # doctest: +SKIP
    """
    return compare_points(*evaluate_runs(paths, num_samples, device=device, data=data))


def _cell(value: Any, width: int, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"{'-':>{width}}"
    return f"{value:>{width}.{digits}f}"


def format_comparison(rows: Sequence[dict[str, Any]]) -> str:
    """The rows of :func:`compare_runs` as a text table, best first.

    ``≈`` marks log-likelihoods computed with an estimated prior density (Takahashi et al. 2019, Table 2), and
    ``log Z`` is that prior's log integral: its log p(x) would be lower by this much normalised.
    """
    clusters = [key for key in CLUSTER_KEYS if any(key in row for row in rows)]
    width = max(len("run"), *(len(row["name"]) for row in rows))
    header = (
        f"{'run':<{width}} {'model':<16} {'log p(x)':>10} {'diff to best':>17} {'ELBO':>10}"
        f" {'k>0.7':>6} {'log Z':>6}" + "".join(f" {key:>8}" for key in clusters)
    )
    lines = [header]
    for row in rows:
        mark = "≈" if row.get("prior_is_approximate") else " "
        diff = f"{row['diff_to_best']:.3f} ± {row['diff_se']:.3f}"
        lines.append(
            f"{row['name']:<{width}} {row.get('model', ''):<16} {mark}{_cell(row['log_likelihood'], 9)}"
            f" {diff:>17} {_cell(row['elbo'], 10)} {_cell(row['pareto_k_share_above_0.7'], 6, 2)}"
            f" {_cell(row.get('prior_log_normalizer'), 6, 2)}"
            + "".join(f" {_cell(row.get(key), 8)}" for key in clusters)
        )
    return "\n".join(lines)
