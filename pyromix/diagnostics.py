"""Collapse diagnostics: a run that failed in a recognisable way says so in plain words.

Three failures are common and silent, since the loss stays finite:

- a *collapsed mixture*: the cluster readout argmax q(y | x) puts (nearly) every point in a few
  clusters; measured by the effective number of clusters, exp of the entropy of the usage shares,
  and flagged below half of K;
- *posterior collapse*: the encoder's mean ignores x in every dimension, so no latent unit is
  active (Burda, Grosse and Salakhutdinov 2016, *Importance weighted autoencoders*, 5.2: unit u
  is active when Cov_x(E_q[u | x]) > 0.01);
- a *mode-collapsed GAN*: its generations reach few classes (the mode coverage of
  :func:`pyromix.evaluate.mode_coverage`), flagged when the effective number of classes, exp of
  the class entropy, is below half the number of classes.

The functions take tensors and metrics, so they serve runs, estimators and tests alike;
:func:`collapse_warning` turns a run's metrics into the one line that ``pyromix fit`` and
``pyromix evaluate`` print, and :func:`plot_diagnostics` draws them for the report.

Example:
    >>> usage = cluster_usage(torch.tensor([0, 0, 0, 1]), 4)
    >>> usage["effective_clusters"] < 2, collapse_warnings(usage)[0].startswith("collapsed")
    (True, True)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure

from .plots.common import axes_for, finish, output_path

__all__ = [
    "ACTIVE_THRESHOLD",
    "FAILURES",
    "cluster_usage",
    "active_units",
    "collapse_warnings",
    "collapse_warning",
    "plot_diagnostics",
]

#: Burda et al. (2016)'s threshold on Cov_x(E_q[u | x]) above which a latent unit is active.
ACTIVE_THRESHOLD = 0.01


#: The names :func:`collapse_warnings` gives the failures, each opening its sentence.
FAILURES = ("collapsed mixture", "posterior collapse", "mode collapse")


def _effective(shares: torch.Tensor) -> float:
    """exp of the entropy of ``shares`` (summing to 1): 1 for one class, K for a uniform spread."""
    nonzero = shares[shares > 0]
    return float(torch.exp(-(nonzero * nonzero.log()).sum()))


def cluster_usage(assigned: torch.Tensor, num_clusters: int) -> dict[str, Any]:
    """How the points spread over the clusters: the shares under argmax q(y | x).

    Arguments:
        assigned: each point's cluster index, shape (N,), in ``[0, num_clusters)``.
        num_clusters: K.

    Returns:
        ``cluster_shares`` (K shares summing to 1), ``effective_clusters`` (exp of their
        entropy: 1 when every point is in one cluster, K when they are spread evenly),
        ``smallest_cluster`` and ``largest_cluster`` (shares) and ``clusters`` (K).

    Example:
        >>> u = cluster_usage(torch.tensor([0, 1, 2, 3]), 4)
        >>> round(u["effective_clusters"], 6), u["smallest_cluster"], u["largest_cluster"]
        (4.0, 0.25, 0.25)
    """
    assigned = torch.as_tensor(assigned).reshape(-1).long().cpu()
    if assigned.numel() == 0:
        raise ValueError("assigned: expected at least one point, got none")
    if assigned.min() < 0 or assigned.max() >= num_clusters:
        raise ValueError(
            f"assigned: expected cluster indices in [0, {num_clusters}), got "
            f"[{int(assigned.min())}, {int(assigned.max())}]"
        )
    shares = torch.bincount(assigned, minlength=num_clusters).double() / assigned.numel()
    return {
        "clusters": num_clusters,
        "cluster_shares": [float(s) for s in shares],
        "effective_clusters": _effective(shares),
        "smallest_cluster": float(shares.min()),
        "largest_cluster": float(shares.max()),
    }


def active_units(latent_means: torch.Tensor, threshold: float = ACTIVE_THRESHOLD) -> dict[str, Any]:
    """Active latent units: dimensions whose posterior mean varies over the data.

    Burda, Grosse and Salakhutdinov (2016), *Importance weighted autoencoders*, 5.2: unit u is
    active when A_u = Cov_x(E_{q(u | x)}[u]) exceeds 0.01. A unit whose q(u | x) does not depend
    on x (posterior collapse: q(u | x) is the prior, and the KL term for u is zero) has A_u = 0.

    Arguments:
        latent_means: E_q[z | x] of N points, shape (N, d), N >= 2.
        threshold: the activity threshold (0.01).

    Returns:
        ``active_units`` (count), ``latent_units`` (d) and ``unit_activity`` (A_u per unit).

    Example:
        >>> z = torch.stack([torch.arange(4.0), torch.zeros(4)], -1)  # unit 2 ignores x
        >>> active_units(z)["active_units"]
        1
    """
    z = torch.as_tensor(latent_means).detach().double().cpu()
    if z.dim() != 2 or z.shape[0] < 2:
        raise ValueError(f"latent_means: expected shape (N >= 2, d), got {tuple(z.shape)}")
    activity = z.var(0, unbiased=False)
    return {
        "active_units": int((activity > threshold).sum()),
        "latent_units": z.shape[1],
        "unit_activity": [float(a) for a in activity],
    }


def collapse_warnings(metrics: dict[str, Any]) -> list[str]:
    """The plain-words names of the failures ``metrics`` show; empty for a healthy run.

    Reads the entries of :func:`cluster_usage`, :func:`active_units` and
    :func:`pyromix.evaluate.mode_coverage` that ``metrics`` holds; a missing entry is no warning.
    """
    found = []
    k, effective = metrics.get("clusters"), metrics.get("effective_clusters")
    if k and effective is not None and k > 1 and effective < k / 2:
        found.append(
            f"collapsed mixture: argmax q(y | x) uses {effective:.1f} effective clusters of {k} "
            f"(largest cluster {metrics['largest_cluster']:.0%} of the points)"
        )
    if metrics.get("latent_units") and metrics.get("active_units") == 0:
        found.append(
            "posterior collapse: no active latent unit (E_q[z | x] hardly varies with x, "
            f"variance <= {ACTIVE_THRESHOLD} in each of the {metrics['latent_units']} dimensions)"
        )
    classes = len(metrics.get("class_histogram") or [])
    entropy = metrics.get("class_entropy")
    if classes > 1 and entropy is not None and math.exp(entropy) < classes / 2:
        found.append(
            f"mode collapse: the generations cover {math.exp(entropy):.1f} effective classes of "
            f"{classes} ({metrics.get('classes_hit_1pct')} with at least 1 % of them)"
        )
    return found


def collapse_warning(metrics: dict[str, Any]) -> str:
    """One line naming every failure of :func:`collapse_warnings`, or "" for a healthy run."""
    found = collapse_warnings(metrics)
    if not found:
        return ""
    return (
        "warning: this run has failed: "
        + "; ".join(found)
        + " (another start may not: --restarts R, MixtureClustering(n_init=R))"
    )


def plot_diagnostics(
    metrics: dict[str, Any],
    path: str | Path | None = None,
    *,
    title: str = "",
    ax: Any = None,
) -> Figure | Path | None:
    """``diagnostics.png``: cluster shares, unit activity and class coverage that ``metrics``
    hold, one panel each with its threshold; None when it holds none of them.

    Arguments:
        metrics: a run's metrics (``metrics.json``, or :func:`cluster_usage` and
            :func:`active_units` merged).
        path: where to write the figure; None returns it instead.
        title: the figure's title.
        ax: a matplotlib Axes, or a sequence of one per panel present, to draw into (as
            :mod:`pyromix.plots` does); default a new figure.

    Returns:
        ``path`` once written, the figure when ``path`` is None, or None without panels.
    """
    # (values, threshold line, x label, y label, caption) for each diagnostic present
    panels = [
        (values, line(values), xlabel, ylabel, caption())
        for key, line, xlabel, ylabel, caption in (
            (
                "cluster_shares",
                lambda v: 1 / len(v),
                "cluster",
                "share of points",
                lambda: f"{metrics['effective_clusters']:.1f} effective clusters of "
                f"{metrics['clusters']}",
            ),
            (
                "unit_activity",
                lambda v: ACTIVE_THRESHOLD,
                "latent unit",
                "Cov_x(E_q[u | x])",
                lambda: f"{metrics['active_units']} active units of {metrics['latent_units']}",
            ),
            (
                "class_histogram",
                lambda v: 1 / len(v),
                "class",
                "share of generations",
                lambda: f"{math.exp(metrics['class_entropy']):.1f} effective classes of "
                f"{len(metrics['class_histogram'])}",
            ),
        )
        if (values := metrics.get(key))
    ]
    path = output_path(path)
    if not panels:
        return None
    axes = axes_for(ax, len(panels), lambda: Figure(figsize=(4 * len(panels), 3), layout="tight"))
    for panel, (values, line, xlabel, ylabel, caption) in zip(axes, panels):
        panel.bar(range(len(values)), values, color="tab:blue")
        panel.axhline(line, color="tab:red", linestyle="--", linewidth=1)
        panel.set(xlabel=xlabel, ylabel=ylabel, title=caption)
        if ylabel.startswith("Cov"):
            panel.set_yscale("symlog", linthresh=ACTIVE_THRESHOLD)
    if title:
        axes[0].figure.suptitle(title)
    return finish(axes[0], path)
