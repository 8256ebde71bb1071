"""Held-out log p(x) per point as arviz ``ELPDData``, so ``arviz.compare`` ranks pyromix runs.

The expected log predictive density of a model on n held-out points is
``elpd = sum_i log p(x_i)``; pyromix estimates each term by importance sampling
(:func:`pyromix.evaluate.log_likelihood`). Wrapped as the ``ELPDData`` that
``arviz.loo(..., pointwise=True)`` returns, with these per-point values as ``loo_i``, it goes
into ``arviz.compare`` like any PSIS-LOO result: the points are genuinely held out, so no
leave-one-out correction is needed. For a model with a global latent theta the per-point value is
already the held-out predictive density ``log p(x_i | data) ~ log E_{q(theta)} p(x_i | theta)``
(:mod:`pyromix.importance`), the very term of elpd; for a model with local latents only, theta
is empty and it is ``log p(x_i)``. Runs on different footings (:mod:`pyromix.evaluable`) do not
compare; :func:`compare_runs_arviz` refuses them as :func:`pyromix.compare.evaluate_runs` does.

``arviz.compare`` works on the scale of sums over the n points where ``pyromix compare`` reports
means per point, and takes the population variance (``np.var``) where pyromix takes the sample
variance. With ``d_i`` the per-point differences to the best model:

- ``elpd_diff = -n * diff_to_best``;
- ``dse = sqrt(n * var_0(d)) = n * diff_se * sqrt((n - 1) / n)``.

References:
    Vehtari, Gelman & Gabry (2017), "Practical Bayesian model evaluation using leave-one-out
    cross-validation and WAIC", eq. 4 (elpd), 23-24 (standard errors of elpd and differences).
    Burda, Grosse & Salakhutdinov (2016), the importance-sampled log p(x).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .evaluate import PARETO_K_THRESHOLD, LogLikelihood

__all__ = ["elpd_data", "arviz_compare", "compare_runs_arviz"]


def _arviz():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # arviz announces its refactor on import
        import arviz

    return arviz


def elpd_data(result: LogLikelihood) -> Any:
    """``result``'s per-point log p(x) as an arviz ``ELPDData`` (log scale, pointwise).

    Arguments:
        result: per-point importance-sampling results on n held-out points.

    Returns:
        An ``ELPDData`` with ``elpd_loo`` the sum of the n log p(x_i), ``se`` =
        ``sqrt(n var_0(log p(x_i)))``, ``loo_i`` the per-point values, ``pareto_k`` the
        importance weights' Pareto k per point (NaN where S < 25), ``n_samples`` = S,
        ``warning`` true if any k exceeds 0.7, and ``p_loo`` NaN (it is a LOO notion).

    Example:
        >>> import torch
        >>> nan = torch.full((3,), float("nan"))
        >>> e = elpd_data(LogLikelihood(torch.tensor([-1.0, -2.0, -3.0]), nan, nan, 10))
        >>> float(e["elpd_loo"]), round(float(e["se"]), 4), e["loo_i"].shape
        (-6.0, 1.4142, (3,))
    """
    arviz = _arviz()
    from xarray import DataArray

    log_px = result.log_px.detach().double().cpu().numpy()
    if log_px.ndim != 1 or log_px.size < 1:
        raise ValueError(f"result: expected per-point log p(x) of shape (n,), got {log_px.shape}")
    k = result.pareto_k.detach().double().cpu().numpy()
    n = log_px.size
    return arviz.ELPDData(
        data=[
            float(log_px.sum()),
            float(np.sqrt(n * np.var(log_px))),
            float("nan"),
            result.num_samples,
            n,
            bool(np.nanmax(k, initial=-np.inf) > PARETO_K_THRESHOLD),
            DataArray(log_px, dims=["point"], name="loo_i"),
            DataArray(k, dims=["point"], name="pareto_k"),
            "log",
            PARETO_K_THRESHOLD,
        ],
        index=[
            "elpd_loo",
            "se",
            "p_loo",
            "n_samples",
            "n_data_points",
            "warning",
            "loo_i",
            "pareto_k",
            "scale",
            "good_k",
        ],
    )


def arviz_compare(
    names: Sequence[str], results: Sequence[LogLikelihood], extras: Any = None, **options: Any
) -> Any:
    """``arviz.compare`` of models evaluated on the same held-out points.

    Arguments:
        names: one label per model.
        results: per-point results on the same n points, one per model.
        extras: ignored; it lets ``arviz_compare(*evaluate_runs(...))`` read as
            ``compare_points(*evaluate_runs(...))``.
        **options: passed to ``arviz.compare`` (e.g. ``method="BB-pseudo-BMA"``).

    Returns:
        The comparison table of arviz, a pandas DataFrame with the best model first and the
        columns ``elpd_loo``, ``elpd_diff``, ``se``, ``dse``, ``weight`` and others, on the
        scale of sums over the points.

    Example:
        >>> import torch
        >>> nan = torch.full((3,), float("nan"))
        >>> a = LogLikelihood(torch.tensor([-1.0, -2.0, -3.0]), nan, nan, 10)
        >>> b = LogLikelihood(torch.tensor([-1.5, -2.0, -3.5]), nan, nan, 10)
        >>> table = arviz_compare(["a", "b"], [a, b])
        >>> list(table.index), float(table.loc["b", "elpd_diff"])
        (['a', 'b'], 1.0)
    """
    if len(names) != len(results) or len(results) < 2:
        raise ValueError(
            f"names and results: expected equally many (>= 2), got {len(names)} and {len(results)}"
        )
    shapes = {tuple(r.log_px.shape) for r in results}
    if len(shapes) != 1:
        raise ValueError(f"results: expected estimates on the same points, got shapes {shapes}")
    arviz = _arviz()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # arviz warns of k > 0.7, which the table reports
        return arviz.compare({n: elpd_data(r) for n, r in zip(names, results)}, **options)


def compare_runs_arviz(
    paths: Sequence[str | os.PathLike], num_samples: int = 1000, **options: Any
) -> Any:
    """``arviz.compare`` of run directories (:func:`pyromix.compare.evaluate_runs`, whose
    keywords ``device`` and ``data`` it takes; other keywords go to ``arviz.compare``).

    Example:
        >>> compare_runs_arviz(["runs/vae", "runs/iwae"], 1000)  # doctest: +SKIP
    """
    from .compare import evaluate_runs

    keys = {k: options.pop(k) for k in ("device", "data") if k in options}
    return arviz_compare(*evaluate_runs(paths, num_samples, **keys), **options)
