"""Samples from a model, pictured by the kind of data: image grids, histograms, heat maps."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .common import ArrayLike, PathLike, _as_images, _as_rows, axes_for, finish, output_path
from .images import image_figure, image_panel, tile

__all__ = ["plot_samples"]


def plot_samples(
    means: ArrayLike,
    path: PathLike | None = None,
    *,
    image_shape: tuple[int, int] | None = None,
    binarized: ArrayLike | None = None,
    data: ArrayLike | None = None,
    row_labels: list[str] | None = None,
    title: str = "Samples",
    ax: Axes | Sequence[Axes] | None = None,
) -> Figure | Path:
    """Draw a picture of samples from a model, chosen by the kind of data.

    - Images (``image_shape`` given): a grid of the decoder means and, when ``binarized`` is
      given, a second panel of the binarised samples (the Soons (2020) report shows both: the
      Bernoulli draws are noisier, the means smoother). With ``row_labels`` the N images form
      ``len(row_labels)`` equal rows, each labelled on the left (e.g. one row per cluster).
    - One-dimensional data (D == 1): a density histogram of the samples, over a histogram of
      ``data`` when given.
    - Other data (D > 1): a heat map of the first 64 samples (rows) by dimension (columns)
      and, when ``data`` is given, bars comparing the mean of each dimension, model vs data.

    Arguments:
        means: the samples, shape (N, H*W) or (N, H, W) for images, else (N,) or (N, D).
        path: the file to write, its extension picking the format; None writes none.
        image_shape: (H, W) for image data; None for other data.
        binarized: binarised samples, the same shape as ``means``; images only.
        data: real data of the same dimension to compare with; non-image data only.
        row_labels: a label per row of images; images only.
        title: the figure title (with ``ax``, the prefix of each panel's title).
        ax: a matplotlib Axes to draw into, or a sequence of two for the figures of two panels
            (means and binarised samples; samples and data means); a figure of its own by
            default.

    Returns:
        ``path`` as a :class:`pathlib.Path` when given; else the figure drawn on
        (``ax.figure`` with ``ax``).

    References:
        Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014, fig. 5 (sample means).

    Example:
        >>> import torch
        >>> probs = torch.rand(64, 64)
        >>> plot_samples(probs, "out/samples.png", image_shape=(8, 8),
        ...              binarized=torch.bernoulli(probs))
        PosixPath('out/samples.png')
    """
    path = output_path(path)
    if image_shape is None:
        for name, value in (("binarized", binarized), ("row_labels", row_labels)):
            if value is not None:
                raise ValueError(
                    f"{name}: expected None for non-image data (image_shape=None), "
                    f"got a {type(value).__name__}; pass image_shape for images"
                )
        return _plot_vector_samples(_as_rows(means, "means"), data, path, title, ax)
    if data is not None:
        raise ValueError(
            f"data: expected None for image data (image_shape={image_shape!r}), "
            f"got a {type(data).__name__}; data is compared only for non-image data"
        )

    images = _as_images(means, image_shape, "means")
    panels = [(images, "means")]
    if binarized is not None:
        binary = _as_images(binarized, image_shape, "binarized")
        if binary.shape != images.shape:
            raise ValueError(
                f"binarized: expected the shape of means {images.shape}, got {binary.shape}"
            )
        panels.append((binary, "binarised samples"))
    if row_labels is None:
        ncol = math.ceil(math.sqrt(len(images)))
    else:
        nrows = len(row_labels)
        if nrows == 0 or len(images) % nrows:
            raise ValueError(
                f"row_labels: expected a number of labels that divides the "
                f"{len(images)} images into equal rows, got {nrows} labels"
            )
        ncol = len(images) // nrows
        row_labels = [str(label) for label in row_labels]

    grid = tile(images, ncol)
    axes = axes_for(
        ax, len(panels), lambda: image_figure(grid, len(panels), row_labels is not None, True)
    )
    if ax is None:
        axes[0].figure.suptitle(title)
    for axis, (panel, name) in zip(axes, panels, strict=True):
        image_panel(axis, panel, ncol, name if ax is None else f"{title}: {name}", row_labels)
    return finish(axes[0], path)


def _plot_vector_samples(
    samples: np.ndarray, data: ArrayLike | None, path: Path | None, title: str, ax
) -> Figure | Path:
    """The non-image branch of :func:`plot_samples`: ``samples`` has shape (N, D)."""
    dim = samples.shape[1]
    if data is not None:
        data = _as_rows(data, "data")
        if data.shape[1] != dim:
            raise ValueError(f"data: expected {dim} column(s) like means, got shape {data.shape}")

    if dim == 1:
        (ax,) = axes_for(ax, 1, lambda: Figure(figsize=(6, 4), layout="constrained"))
        # Shared bins so the two histograms compare bar for bar.
        pooled = samples if data is None else np.concatenate([samples, data])
        bins = np.histogram_bin_edges(pooled, bins=40)
        ax.hist(samples[:, 0], bins=bins, density=True, alpha=0.6, label="model")
        if data is not None:
            ax.hist(data[:, 0], bins=bins, density=True, alpha=0.6, label="data")
        ax.set(xlabel="x", ylabel="density", title=title)
        ax.legend()
        return finish(ax, path)

    size = (11 if data is not None else 6, 5)
    axes = axes_for(ax, 1 + (data is not None), lambda: Figure(figsize=size, layout="constrained"))
    shown = samples[:64]
    image = axes[0].imshow(shown, aspect="auto", cmap="viridis", interpolation="nearest")
    axes[0].figure.colorbar(image, ax=axes[0], label="value")
    axes[0].set(
        xlabel="dimension", ylabel="sample", title=f"{title}: first {len(shown)} of {len(samples)}"
    )
    axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].yaxis.set_major_locator(MaxNLocator(integer=True))
    if data is not None:
        positions = np.arange(dim)
        axes[1].bar(positions - 0.2, samples.mean(0), width=0.4, label="model")
        axes[1].bar(positions + 0.2, data.mean(0), width=0.4, label="data")
        axes[1].set(xlabel="dimension", ylabel="mean", title="Mean of each dimension")
        axes[1].xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[1].legend()
    return finish(axes[0], path)
