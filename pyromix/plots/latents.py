"""Latent vectors pictured: a histogram, a scatter, or a scatter of two principal components,
coloured by label."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from .common import ArrayLike, PathLike, _as_rows, _to_numpy, axes_for, finish, output_path

__all__ = ["plot_latents"]

# Past this many classes tab10 repeats colours, so labels get a continuous colour bar instead.
MAX_CATEGORIES = 10


def _label_colours(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """(classes, per-point colour values, categorical?) for ``labels``."""
    classes, codes = np.unique(labels, return_inverse=True)
    categorical = len(classes) <= MAX_CATEGORIES
    numeric = np.issubdtype(labels.dtype, np.number)
    return classes, (labels.astype(float) if numeric and not categorical else codes), categorical


def plot_latents(
    z: ArrayLike,
    path: PathLike | None = None,
    *,
    labels: ArrayLike | None = None,
    title: str = "Latent means",
    ax: Axes | None = None,
) -> Figure | Path:
    """Draw a picture of latent vectors (e.g. encoder means), coloured by label.

    d == 1 gives a histogram (one per class when labelled), d == 2 a scatter of the two
    coordinates, d > 2 a scatter of the first two principal components. Up to 10 classes get
    tab10 colours and a legend; more (or continuous labels) get a viridis colour bar, and for
    d == 1 a scatter of z against the label.

    Arguments:
        z: latents, shape (N,) or (N, d), finite.
        path: the file to write, its extension picking the format; None writes none.
        labels: one label per point, shape (N,); None for no colouring.
        title: the axes title.
        ax: a matplotlib Axes to draw into; a figure of its own by default.

    Returns:
        ``path`` as a :class:`pathlib.Path` when given; else the figure drawn on
        (``ax.figure`` with ``ax``).

    Example:
        >>> import torch
        >>> plot_latents(torch.randn(500, 10), "out/latents.png",
        ...              labels=torch.randint(0, 10, (500,)))
        PosixPath('out/latents.png')
    """
    path = output_path(path)
    z = _as_rows(z, "z")
    count, dim = z.shape
    if labels is not None:
        labels = _to_numpy(labels, "labels")
        if labels.shape != (count,):
            raise ValueError(
                f"labels: expected shape ({count},), one per row of z, got {tuple(labels.shape)}"
            )
        classes, colour_values, categorical = _label_colours(labels)

    (ax,) = axes_for(ax, 1, lambda: Figure(figsize=(6.5, 5), layout="constrained"))
    ax.set_title(title)
    if dim == 1 and (labels is None or categorical):
        bins = np.histogram_bin_edges(z[:, 0], bins=40)
        if labels is None:
            ax.hist(z[:, 0], bins=bins)
        else:
            for k, cls in enumerate(classes):
                ax.hist(
                    z[labels == cls, 0],
                    bins=bins,
                    histtype="step",
                    linewidth=1.5,
                    color=colormaps["tab10"](k),
                    label=str(cls),
                )
            ax.legend(title="label")
        ax.set(xlabel="$z_1$", ylabel="count")
        return finish(ax, path)

    if dim == 1:
        xy, axis_labels = np.column_stack([z[:, 0], colour_values]), ("$z_1$", "label")
    elif dim == 2:
        xy, axis_labels = z, ("$z_1$", "$z_2$")
    else:
        from sklearn.decomposition import PCA

        if count < 2:
            raise ValueError(
                f"z: expected at least 2 points for PCA of {dim}-D latents, got {count}"
            )
        pca = PCA(n_components=2).fit(z)
        xy = pca.transform(z)
        axis_labels = tuple(
            f"PC {k + 1} of {dim}-D z ({ratio:.0%} of variance)"
            for k, ratio in enumerate(pca.explained_variance_ratio_)
        )
    ax.set(xlabel=axis_labels[0], ylabel=axis_labels[1])
    style = dict(s=10, alpha=0.7, linewidths=0)
    if labels is None:
        ax.scatter(xy[:, 0], xy[:, 1], **style)
    elif categorical:
        for k, cls in enumerate(classes):
            chosen = labels == cls
            ax.scatter(
                xy[chosen, 0], xy[chosen, 1], color=colormaps["tab10"](k), label=str(cls), **style
            )
        ax.legend(title="label", markerscale=2)
    else:
        norm = Normalize(colour_values.min(), colour_values.max())
        ax.scatter(xy[:, 0], xy[:, 1], c=colour_values, cmap="viridis", norm=norm, **style)
        ax.figure.colorbar(ScalarMappable(norm=norm, cmap="viridis"), ax=ax, label="label")
    return finish(ax, path)
