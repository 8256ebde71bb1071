"""Evaluation the way the papers do it: importance-sampled log p(x), ELBO, bits/dim, clustering.

References:
    Burda, Grosse & Salakhutdinov (2016), importance-weighted estimate of log p(x).
    Vehtari et al. (2024), Pareto-smoothed importance sampling: k > 0.7 flags unreliable weights.
    Li et al. (2020), eq. 16 (ACC over one-to-one cluster-label mappings, Kuhn-Munkres).
    Chowdhury et al., 4.2 (clustering by a GMM fitted on latent means).
"""

from __future__ import annotations

import contextlib
import functools
import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.mixture import GaussianMixture
from torch import nn

from .importance import (
    SiteError,
    chunk_sizes,
    importance_weights,
    log_importance_weights,
    probe_sites,
    values_per_sample,
)
from .local_params import keeps_params_local

__all__ = [
    "eval_mode",
    "SiteError",
    "log_importance_weights",
    "LogLikelihood",
    "log_likelihood",
    "numbers_per_sample",
    "bits_per_dim",
    "cluster_accuracy",
    "clustering_scores",
    "latent_gmm",
    "fit_classifier",
    "mode_coverage",
]

PARETO_K_THRESHOLD = 0.7
# PSIS fits a generalised Pareto to the largest min(S/5, 3 sqrt(S)) weights; it needs more than
# four of them, so S >= 25.
MIN_PSIS_SAMPLES = 25


@contextlib.contextmanager
def eval_mode(*programs: Callable[..., Any]) -> Iterator[None]:
    """Put the modules among ``programs`` in eval mode (no dropout) and restore their previous
    modes afterwards; plain callables are left alone and a ``functools.partial`` is looked
    through to the module it wraps."""
    modules = [_module_of(p) for p in programs]
    modes = [(m, m.training) for m in modules if m is not None]
    for m, _ in modes:
        m.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.train(mode)


def _module_of(program: Callable[..., Any]) -> nn.Module | None:
    while isinstance(program, functools.partial):
        program = program.func
    return program if isinstance(program, nn.Module) else None


@dataclass
class LogLikelihood:
    """Per-point importance-sampling results.

    Attributes:
        log_px: importance-sampled estimate of log p(x), shape (N,) (with a global latent: the
            held-out predictive density log p(x_n | data), :mod:`pyromix.importance`).
        elbo: the ELBO estimated from the same samples (mean log weight), shape (N,).
        pareto_k: PSIS Pareto shape of each point's weights; above 0.7 the estimate is unreliable;
            NaN where S is too small to estimate it (fewer than about 25).
        num_samples: S.
        summed_sites: the guide's enumerated sites, summed exactly over their values.
        global_sites: latent sites outside the data plate, drawn once per sample for all points.
    """

    log_px: torch.Tensor
    elbo: torch.Tensor
    pareto_k: torch.Tensor
    num_samples: int
    summed_sites: tuple[str, ...] = ()
    global_sites: tuple[str, ...] = ()

    def summary(self) -> dict[str, float]:
        """Means over points, the worst Pareto k and the share of points above 0.7.

        The k entries are NaN when k is not estimable (fewer than about 25 samples).
        """
        estimable = not torch.isnan(self.pareto_k).any()
        above = (self.pareto_k > PARETO_K_THRESHOLD).float().mean()
        return {
            "log_likelihood": float(self.log_px.mean()),
            "elbo": float(self.elbo.mean()),
            "pareto_k_max": float(self.pareto_k.max()) if estimable else math.nan,
            "pareto_k_share_above_0.7": float(above) if estimable else math.nan,
        }

    def estimator(self) -> str:
        """The estimator in words, for ``metrics.json``."""
        words = f"importance sampling, S = {self.num_samples}, the guide as proposal"
        if self.summed_sites:
            words += f"; {', '.join(self.summed_sites)} summed exactly over their values"
        if self.global_sites:
            words += (
                f"; {', '.join(self.global_sites)} drawn from q once per sample for all points "
                "(held-out predictive density)"
            )
        return words

    def too_few_samples(self, flag: str = "--samples (num_samples in Python)") -> str | None:
        """One line when most points have Pareto k > 0.7 (S too small for a reliable log p(x)),
        naming ``flag``, the option that raises S; None otherwise."""
        share = self.summary()["pareto_k_share_above_0.7"]
        if not share > 0.5:  # NaN (k not estimable) included
            return None
        return (
            f"{share:.0%} of the points have Pareto k > {PARETO_K_THRESHOLD}: S = "
            f"{self.num_samples} importance samples are too few for a reliable log p(x); "
            f"raise {flag}"
        )


def _pareto_k(log_weights: torch.Tensor) -> torch.Tensor:
    if log_weights.shape[0] < MIN_PSIS_SAMPLES:
        return torch.full(log_weights.shape[1:], torch.nan, dtype=log_weights.dtype)
    with warnings.catch_warnings():
        # arviz announces its refactor on import and warns when k > 0.7: we report k instead.
        warnings.simplefilter("ignore")
        import arviz

        _, k = arviz.psislw(log_weights.T.double().cpu().numpy())
    k = torch.as_tensor(np.asarray(k), dtype=log_weights.dtype)
    # arviz returns inf when the tail is too short to fit (fewer than about 25 samples): that is
    # "not estimable", not "unreliable", so it is reported as NaN.
    return torch.where(torch.isinf(k), torch.nan, k)


@keeps_params_local
def numbers_per_sample(model: Any, data_dim: int) -> int:
    """The numbers one importance sample of one point touches, for chunking: ``data_dim``, or
    more where a submodule of ``model`` declares a ``numbers_per_sample`` of its own (a mixture
    prior: K x latent_dim, :mod:`pyromix.models.priors`). A user's module with large
    intermediate tensors per sample can declare the attribute the same way."""
    modules = model.modules() if isinstance(model, nn.Module) else ()
    declared = (getattr(m, "numbers_per_sample", 0) for m in modules)
    return max([data_dim, *declared])


def log_likelihood(
    model: Callable[..., Any],
    guide: Callable[..., Any],
    x: torch.Tensor,
    num_samples: int = 1000,
    *,
    y: torch.Tensor | None = None,
    y_mask: torch.Tensor | None = None,
    max_elements: int = 2**24,
    max_plate_nesting: int = 1,
    enumerate_sites: bool = True,
) -> LogLikelihood:
    r"""Importance-sampled ``log p(x) ~ logsumexp_s log w_s - log S`` per data point.

    Estimator: the guide is the proposal (:func:`pyromix.importance.importance_weights`). Sites
    the guide marks for parallel enumeration (y of ``gmvae``, ``gmvae-meanfield``, ``m2``, the
    ``mvae`` family with soft optimisation, ``cpvae --estimator enum``) are summed exactly:
    ``w_s = sum_y p(x, y, z_{s,y}) / q(z_{s,y} | x, y)`` with ``z_{s,y} ~ q(z | x, y)``, so their
    ``q(y | x)`` drops out of the weight; sampled discrete sites (NVIL, VIMCO, Gumbel-softmax)
    stay sampled. With a latent outside the data plate (a global theta), the estimate is the
    held-out predictive density ``log (1/S) sum_s p(x_n, z_s | theta_s) / q(z_s | x_n,
    theta_s)`` with ``theta_s ~ q(theta)``. The ELBO sums enumerated sites with their
    probabilities, as ``TraceEnum_ELBO`` does.

    Work is split into chunks of points and of samples so that one chunk touches at most about
    ``max_elements`` numbers (chunk points x chunk samples x enumerated values x the width of
    :func:`numbers_per_sample`: D, or more for a mixture prior's K x latent_dim) and at most
    ``max_elements`` weights are held at once: memory stays bounded for any S and N, and exact
    sums cost K times the work of sampling y.

    Arguments:
        model, guide: Pyro programs (modules, plain callables or partials); the guide is the
            proposal. Sites count as in :func:`pyromix.importance.importance_weights`.
        x: data, shape (N, D).
        y, y_mask: revealed labels and their mask, shape (N,), or None (the convention of
            :mod:`pyromix.labels`). Hidden labels are summed out where the guide enumerates them
            (sampled where it samples them), so this is log p(x), times p(y | ...) of the
            revealed ones: log p(x, y) when every label is revealed.
        num_samples: S importance samples per point (the papers use 1000 to 5000; S = 1 gives
            a one-sample ELBO estimate, exact sums included).
        max_elements: memory budget in tensor elements.
        max_plate_nesting: plates the model nests (1: the data plate).
        enumerate_sites: False samples the enumerated sites from the guide instead (the
            estimator of earlier versions, kept to measure what exact sums change).

    Returns:
        :class:`LogLikelihood` (on the CPU), naming the summed and global sites.

    Example:
        >>> ll = log_likelihood(model, guide, data.test.x, 1000)  # doctest: +SKIP
        >>> ll.summary()["log_likelihood"]  # doctest: +SKIP
    """
    if num_samples < 1:
        raise ValueError(f"num_samples: expected an integer >= 1, got {num_samples}")
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"x: expected a non-empty (N, D) tensor, got shape {tuple(x.shape)}")
    if (y is None) != (y_mask is None):
        raise ValueError("y, y_mask: expected both (revealed labels and their mask) or neither")
    options = dict(max_plate_nesting=max_plate_nesting, enumerate_sites=enumerate_sites)
    with eval_mode(model, guide):
        first = slice(0, 1)
        probe = dict(y=None if y is None else y[first], y_mask=None if y is None else y_mask[first])
        summed, _ = probe_sites(
            model, guide, x[first], max_plate_nesting=max_plate_nesting, **probe
        )
        values = values_per_sample(summed) if enumerate_sites else 1
        points = max(1, min(x.shape[0], max_elements // (num_samples * values)))
        width = numbers_per_sample(model, x.shape[1])
        samples = max(1, min(num_samples, max_elements // (points * values * width)))
        labels = [(None, None)] * math.ceil(x.shape[0] / points)
        if y is not None:
            labels = list(zip(torch.split(y, points), torch.split(y_mask, points)))
        log_px, elbo, pareto_k, weights = [], [], [], None
        for chunk, (y_chunk, mask_chunk) in zip(torch.split(x, points), labels):
            parts = [
                importance_weights(model, guide, chunk, s, y=y_chunk, y_mask=mask_chunk, **options)
                for s in chunk_sizes(num_samples, samples)
            ]
            weights = parts[0]
            log_w = torch.cat([part.log_w for part in parts]).cpu()
            log_px.append(torch.logsumexp(log_w, 0) - math.log(num_samples))
            elbo.append(torch.cat([part.elbo for part in parts]).cpu().mean(0))
            pareto_k.append(_pareto_k(log_w))
    return LogLikelihood(
        torch.cat(log_px),
        torch.cat(elbo),
        torch.cat(pareto_k),
        num_samples,
        weights.summed,
        weights.global_sites,
    )


def bits_per_dim(log_px: torch.Tensor | float, data_dim: int) -> torch.Tensor | float:
    """``-log p(x) / (D ln 2)``: negative log-likelihood in bits per dimension (Soons 2020, 1.9)."""
    return -log_px / (data_dim * math.log(2.0))


def _contingency(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    clusters, y_pred = np.unique(y_pred, return_inverse=True)
    classes, y_true = np.unique(y_true, return_inverse=True)
    table = np.zeros((len(clusters), len(classes)), dtype=np.int64)
    np.add.at(table, (y_pred, y_true), 1)
    return table


def cluster_accuracy(y_true, y_pred, *, many_to_one: bool = False) -> float:
    r"""Unsupervised clustering accuracy (Li et al. 2020, eq. 16).

    ``ACC = max_f (1/N) sum_i 1[f(c_i) = l_i]`` over one-to-one maps f from clusters to labels,
    found with the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``). With more
    clusters than classes only as many clusters as classes can be matched and the rest count as
    errors; ``many_to_one=True`` instead maps each cluster to its majority class (the readout for
    over-clustered models such as CP-VAE with K=150).

    Arguments:
        y_true: true labels, shape (N,).
        y_pred: cluster assignments, shape (N,); any integer ids.
        many_to_one: majority mapping instead of one-to-one.
    """
    y_true, y_pred = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(
            f"y_true and y_pred: expected two non-empty arrays of equal length, got "
            f"{y_true.shape} and {y_pred.shape}"
        )
    table = _contingency(y_true, y_pred)
    if many_to_one:
        matched = table.max(axis=1).sum()
    else:
        rows, cols = linear_sum_assignment(table, maximize=True)
        matched = table[rows, cols].sum()
    return float(matched / y_true.size)


def clustering_scores(y_true, y_pred, *, prefix: str = "") -> dict[str, float]:
    """ACC (one-to-one), NMI and ARI as a dict with keys ``{prefix}acc``, ``nmi``, ``ari``.

    Points whose true label is unknown (-1, as in a user's label file) are left out: an unknown
    label is not a class of its own.
    """
    y_true, y_pred = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    if y_true.shape == y_pred.shape:  # else cluster_accuracy refuses the pair by name
        known = y_true >= 0
        y_true, y_pred = y_true[known], y_pred[known]
    return {
        f"{prefix}acc": cluster_accuracy(y_true, y_pred),
        f"{prefix}nmi": float(normalized_mutual_info_score(y_true, y_pred)),
        f"{prefix}ari": float(adjusted_rand_score(y_true, y_pred)),
    }


def latent_gmm(z, n_components: int, *, seed: int = 0) -> np.ndarray:
    """Cluster latent means with a full-covariance GaussianMixture (Chowdhury et al., 4.2).

    Returns:
        Cluster assignments, shape (N,).
    """
    z = z.detach().cpu().numpy() if isinstance(z, torch.Tensor) else np.asarray(z)
    if z.ndim != 2 or z.shape[0] < n_components:
        raise ValueError(
            f"z: expected (N, d) latents with N >= n_components={n_components}, got {z.shape}"
        )
    gmm = GaussianMixture(n_components, covariance_type="full", n_init=3, random_state=seed)
    return gmm.fit_predict(z.astype(np.float64))


def fit_classifier(x: torch.Tensor, y: torch.Tensor, *, seed: int = 0):
    """A multinomial logistic regression of labels on x (scikit-learn), for counting modes.

    Returns:
        ``classify(x) -> (N,)`` numpy array of predicted labels.
    """
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=2000, random_state=seed)
    model.fit(x.detach().cpu().double().numpy(), y.cpu().numpy())
    return lambda points: model.predict(points.detach().cpu().double().numpy())


def mode_coverage(generated: torch.Tensor, classify, num_classes: int) -> dict[str, Any]:
    r"""How many classes a generator's samples reach: a mode-collapse check (Soons 2020, 2.5).

    Each sample is labelled by ``classify``; a collapsed generator hits few classes and its class
    histogram has low entropy (0 for one class; log K for a uniform spread over K).

    Arguments:
        generated: samples, shape (N, D).
        classify: ``x -> labels`` (:func:`fit_classifier`).
        num_classes: K.

    Returns:
        ``classes_hit`` (classes with at least one sample), ``classes_hit_1pct`` (with at least
        1 % of them), ``class_entropy`` (nats), ``class_entropy_max`` (log K) and
        ``class_histogram`` (shares).

    Example:
        >>> r = mode_coverage(torch.zeros(4, 1), lambda x: np.array([0, 0, 1, 1]), 3)
        >>> r["classes_hit"], round(r["class_entropy"], 4), r["class_histogram"]
        (2, 0.6931, [0.5, 0.5, 0.0])
    """
    labels = np.asarray(classify(generated)).astype(np.int64)
    shares = np.bincount(labels, minlength=num_classes) / len(labels)
    nonzero = shares[shares > 0]
    return {
        "classes_hit": int((shares > 0).sum()),
        "classes_hit_1pct": int((shares >= 0.01).sum()),
        "class_entropy": float(-(nonzero * np.log(nonzero)).sum()),
        "class_entropy_max": math.log(num_classes),
        "class_histogram": [float(v) for v in shares],
    }
