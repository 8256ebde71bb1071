"""Figures as files: sample grids, reconstructions, the 2-D latent manifold, latents, curves.

Every function draws on its own :class:`matplotlib.figure.Figure` with the Agg canvas rather than
through ``pyplot``: no window opens, no backend is forced, and a notebook's pyplot state is left
alone. Each writes the figure to ``path`` (the format follows its extension, ``.png`` usually),
creating parent folders, and returns the path as a :class:`pathlib.Path`. Arrays may be numpy
arrays or torch tensors on any device.

Image panels use the ``gray`` colour map with fixed limits 0 (black) and 1 (white), so a pixel's
shade is its value and never a rescaling that differs between figures.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .rundir import write_atomically

__all__ = [
    "check_image_path",
    "image_grid",
    "plot_samples",
    "plot_reconstructions",
    "plot_manifold",
    "plot_latents",
    "plot_curves",
]

# numpy's ArrayLike covers arrays and nested sequences of numbers.
ArrayLike = torch.Tensor | npt.ArrayLike
PathLike = str | Path

_DPI = 100
# Grey between tiles, distinct from both the black background and the white ink of images.
_PAD_VALUE = 0.5
# Past this many classes tab10 repeats colours, so labels get a continuous colour bar instead.
_MAX_CATEGORIES = 10


# --------------------------------------------------------------------------- input checks


def _to_numpy(x: ArrayLike, name: str) -> np.ndarray:
    """``x`` as a numpy array (CUDA and grad-tracking tensors included); empty is an error."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        # numpy has no bfloat16, and float32 is plenty for a picture.
        x = x.float().numpy() if x.is_floating_point() else x.numpy()
    arr = np.asarray(x)
    if arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {arr.shape}")
    return arr


def _check_image_shape(image_shape: Any) -> tuple[int, int]:
    try:
        height, width = (int(s) for s in image_shape)
    except (TypeError, ValueError):
        raise ValueError(f"image_shape: expected (height, width), got {image_shape!r}") from None
    if height < 1 or width < 1:
        raise ValueError(f"image_shape: expected positive sizes, got {image_shape!r}")
    return height, width


def _as_images(x: ArrayLike, image_shape: Any, name: str) -> np.ndarray:
    """``x`` of shape (N, H*W) or (N, H, W) as a float array of shape (N, H, W)."""
    height, width = _check_image_shape(image_shape)
    arr = _to_numpy(x, name)
    if arr.ndim == 2 and arr.shape[1] == height * width:
        return arr.reshape(-1, height, width).astype(float)
    if arr.ndim == 3 and arr.shape[1:] == (height, width):
        return arr.astype(float)
    raise ValueError(
        f"{name}: expected shape (N, {height * width}) or (N, {height}, {width}) for "
        f"image_shape={(height, width)}, got {tuple(arr.shape)}"
    )


def _as_rows(x: ArrayLike, name: str) -> np.ndarray:
    """``x`` of shape (N,) or (N, D) as a finite float array of shape (N, D)."""
    arr = _to_numpy(x, name)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected shape (N,) or (N, D), got {tuple(arr.shape)}")
    arr = arr.astype(float)
    if not np.isfinite(arr).all():
        raise ValueError(
            f"{name}: expected finite values, got {int((~np.isfinite(arr)).sum())} "
            "NaN or infinite entries"
        )
    return arr


def _check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def check_image_path(path: PathLike, name: str = "path") -> Path:
    """``path`` as a Path whose extension matplotlib can write; checked before any drawing.

    Example:
        >>> check_image_path("grid.svg")
        PosixPath('grid.svg')
    """
    path = Path(path)
    formats = FigureCanvasAgg.get_supported_filetypes()
    if path.suffix.lstrip(".").lower() not in formats:
        raise ValueError(
            f"{name}: expected a file name ending in one of {', '.join('.' + f for f in formats)}, "
            f"got {str(path)!r}"
        )
    return path


def _save(fig: Figure, path: Path, dpi: float = _DPI) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fmt = path.suffix.lstrip(".").lower()
    return write_atomically(path, lambda f: fig.savefig(f, format=fmt, dpi=dpi))


# --------------------------------------------------------------------------- image panels


def _tile(images: np.ndarray, ncol: int) -> np.ndarray:
    """Images (N, H, W) as one (rows*(H+1)+1, ncol*(W+1)+1) array, row-major, 1 px padding."""
    n, height, width = images.shape
    nrows = math.ceil(n / ncol)
    grid = np.full((nrows * (height + 1) + 1, ncol * (width + 1) + 1), _PAD_VALUE)
    for k, image in enumerate(images):
        top, left = 1 + (k // ncol) * (height + 1), 1 + (k % ncol) * (width + 1)
        grid[top : top + height, left : left + width] = image
    return grid


def _panel_size(grid: np.ndarray) -> tuple[float, float]:
    """Inches for an image panel: about 4 screen pixels per image pixel, 4 to 12 inches across."""
    longest = max(grid.shape)
    scale = min(max(4 * longest / _DPI, 4.0), 12.0) / longest
    return grid.shape[1] * scale, grid.shape[0] * scale


def _image_panel(
    ax: Axes,
    images: np.ndarray,
    ncol: int,
    title: str | None = None,
    row_labels: list[str] | None = None,
) -> None:
    """Draw ``images`` tiled ``ncol`` per row on ``ax``; ``row_labels`` name each tile row."""
    grid = _tile(images, ncol)
    ax.imshow(grid, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    if title:
        ax.set_title(title)
    if row_labels is None:
        ax.set_axis_off()
        return
    height = images.shape[1]
    ax.set_xticks([])
    ax.set_yticks([1 + r * (height + 1) + (height - 1) / 2 for r in range(len(row_labels))])
    ax.set_yticklabels(row_labels)
    ax.tick_params(left=False)
    for spine in ax.spines.values():
        spine.set_visible(False)


def _image_figure(grid: np.ndarray, panels: int, labelled: bool, titled: bool) -> Figure:
    """A figure for ``panels`` image panels of the size of ``grid``."""
    width, height = _panel_size(grid)
    # Room for titles and for row labels on the left, which constrained layout then uses.
    return Figure(
        figsize=(panels * width + (1.5 if labelled else 0.2), height + (0.8 if titled else 0.2)),
        layout="constrained",
    )


# --------------------------------------------------------------------------- public API


def image_grid(
    images: ArrayLike,
    image_shape: tuple[int, int],
    path: PathLike,
    *,
    nrow: int | None = None,
    title: str | None = None,
) -> Path:
    """Write ``images`` as one tiled grayscale picture.

    Tiles are laid out row-major, ``nrow`` images per row (torchvision's ``make_grid``
    convention), separated by 1 px of grey. Pixel values are shown on the fixed scale
    0 = black, 1 = white; values outside [0, 1] are clipped.

    Arguments:
        images: N images, shape (N, H*W) or (N, H, W), values in [0, 1].
        image_shape: (H, W).
        path: the file to write; its extension picks the format.
        nrow: images per row; default ``ceil(sqrt(N))``, a near-square grid.
        title: a title above the grid; none by default.

    Returns:
        ``path`` as a :class:`pathlib.Path`.

    Example:
        >>> import torch
        >>> image_grid(torch.rand(64, 64), (8, 8), "out/grid.png")
        PosixPath('out/grid.png')
    """
    path = check_image_path(path)
    images = _as_images(images, image_shape, "images")
    ncol = math.ceil(math.sqrt(len(images))) if nrow is None else _check_positive_int(nrow, "nrow")
    fig = _image_figure(_tile(images, ncol), panels=1, labelled=False, titled=bool(title))
    _image_panel(fig.add_subplot(), images, ncol, title)
    return _save(fig, path)


def plot_samples(
    means: ArrayLike,
    path: PathLike,
    *,
    image_shape: tuple[int, int] | None = None,
    binarized: ArrayLike | None = None,
    data: ArrayLike | None = None,
    row_labels: list[str] | None = None,
    title: str = "Samples",
) -> Path:
    """Write a picture of samples from a model, chosen by the kind of data.

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
        path: the file to write; its extension picks the format.
        image_shape: (H, W) for image data; None for other data.
        binarized: binarised samples, the same shape as ``means``; images only.
        data: real data of the same dimension to compare with; non-image data only.
        row_labels: a label per row of images; images only.
        title: the figure title.

    Returns:
        ``path`` as a :class:`pathlib.Path`.

    References:
        Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014, fig. 5 (sample means).

    Example:
        >>> import torch
        >>> probs = torch.rand(64, 64)
        >>> plot_samples(probs, "out/samples.png", image_shape=(8, 8),
        ...              binarized=torch.bernoulli(probs))
        PosixPath('out/samples.png')
    """
    path = check_image_path(path)
    if image_shape is None:
        for name, value in (("binarized", binarized), ("row_labels", row_labels)):
            if value is not None:
                raise ValueError(
                    f"{name}: expected None for non-image data (image_shape=None), "
                    f"got a {type(value).__name__}; pass image_shape for images"
                )
        return _plot_vector_samples(_as_rows(means, "means"), data, path, title)
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

    fig = _image_figure(_tile(images, ncol), len(panels), row_labels is not None, titled=True)
    fig.suptitle(title)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (panel, name) in zip(axes, panels, strict=True):
        _image_panel(ax, panel, ncol, name, row_labels)
    return _save(fig, path)


def _plot_vector_samples(
    samples: np.ndarray, data: ArrayLike | None, path: Path, title: str
) -> Path:
    """The non-image branch of :func:`plot_samples`: ``samples`` has shape (N, D)."""
    dim = samples.shape[1]
    if data is not None:
        data = _as_rows(data, "data")
        if data.shape[1] != dim:
            raise ValueError(f"data: expected {dim} column(s) like means, got shape {data.shape}")

    if dim == 1:
        fig = Figure(figsize=(6, 4), layout="constrained")
        ax = fig.add_subplot()
        # Shared bins so the two histograms compare bar for bar.
        pooled = samples if data is None else np.concatenate([samples, data])
        bins = np.histogram_bin_edges(pooled, bins=40)
        ax.hist(samples[:, 0], bins=bins, density=True, alpha=0.6, label="model")
        if data is not None:
            ax.hist(data[:, 0], bins=bins, density=True, alpha=0.6, label="data")
        ax.set(xlabel="x", ylabel="density", title=title)
        ax.legend()
        return _save(fig, path)

    fig = Figure(figsize=(11 if data is not None else 6, 5), layout="constrained")
    axes = fig.subplots(1, 2 if data is not None else 1, squeeze=False)[0]
    shown = samples[:64]
    image = axes[0].imshow(shown, aspect="auto", cmap="viridis", interpolation="nearest")
    fig.colorbar(image, ax=axes[0], label="value")
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
    return _save(fig, path)


def plot_reconstructions(
    x: ArrayLike,
    x_recon: ArrayLike,
    image_shape: tuple[int, int],
    path: PathLike,
    *,
    n: int = 16,
) -> Path:
    """Write the first ``n`` images above their reconstructions.

    Up to 16 images go in a row; more wrap into further pairs of rows, each pair an
    "original" row over a "reconstruction" row.

    Arguments:
        x: the data, shape (N, H*W) or (N, H, W).
        x_recon: its reconstructions (e.g. decoder means at the encoder means), same shape.
        image_shape: (H, W).
        path: the file to write; its extension picks the format.
        n: how many images to show; all N when N is smaller.

    Returns:
        ``path`` as a :class:`pathlib.Path`.

    Example:
        >>> import torch
        >>> x = torch.rand(16, 64)
        >>> plot_reconstructions(x, x.clamp(0.2, 0.8), (8, 8), "out/recon.png")
        PosixPath('out/recon.png')
    """
    path = check_image_path(path)
    n = _check_positive_int(n, "n")
    originals = _as_images(x, image_shape, "x")
    recons = _as_images(x_recon, image_shape, "x_recon")
    if recons.shape != originals.shape:
        raise ValueError(f"x_recon: expected the shape of x {originals.shape}, got {recons.shape}")
    originals, recons = originals[:n], recons[:n]
    count, height, width = originals.shape
    ncol = min(count, 16)
    npairs = math.ceil(count / ncol)
    # Pad to whole rows with grey tiles, then interleave: originals row, reconstruction row, ...
    blank = np.full((npairs * ncol - count, height, width), _PAD_VALUE)
    rows = [
        np.concatenate([a, blank]).reshape(npairs, ncol, height, width) for a in (originals, recons)
    ]
    tiles = np.stack(rows, axis=1).reshape(-1, height, width)

    fig = _image_figure(_tile(tiles, ncol), panels=1, labelled=True, titled=True)
    _image_panel(
        fig.add_subplot(),
        tiles,
        ncol,
        f"Reconstructions of the first {count} images",
        ["original", "reconstruction"] * npairs,
    )
    return _save(fig, path)


def plot_manifold(
    decode: Callable[[torch.Tensor], ArrayLike],
    path: PathLike,
    *,
    image_shape: tuple[int, int],
    n: int = 20,
    device: torch.device | str | None = None,
) -> Path:
    """Write the learned 2-D data manifold: decoded images over a grid of latent points.

    The latent points are ``norm.ppf(linspace(0.05, 0.95, n))`` on each axis, so equal steps
    of the grid cover equal probability under the N(0, 1) prior. Column j holds
    ``z_1 = q[j]`` (left to right, increasing) and row i holds ``z_2 = q[n-1-i]`` (increasing
    upwards, as on a plot); ``decode`` receives the n*n points in that row-major order.

    Arguments:
        decode: maps a float32 tensor of latent points, shape (M, 2), to decoder means, shape
            (M, H*W) or (M, H, W); called once, under ``torch.no_grad()``.
        path: the file to write; its extension picks the format.
        image_shape: (H, W).
        n: points per axis (at least 2).
        device: where the latent grid is built; the CPU by default.

    Returns:
        ``path`` as a :class:`pathlib.Path`.

    References:
        Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014, fig. 4.

    Example:
        >>> plot_manifold(lambda z: model.decoder(z).mean, "out/manifold.png",
        ...               image_shape=(28, 28))  # doctest: +SKIP
    """
    # Imported here, as sklearn's PCA below: slow imports that only this function needs.
    from scipy.stats import norm

    path = check_image_path(path)
    height, width = _check_image_shape(image_shape)
    n = _check_positive_int(n, "n", minimum=2)
    quantiles = norm.ppf(np.linspace(0.05, 0.95, n))
    z2, z1 = np.meshgrid(quantiles[::-1], quantiles, indexing="ij")
    z = torch.as_tensor(
        np.stack([z1.ravel(), z2.ravel()], axis=1),
        dtype=torch.float32,
        device=torch.device("cpu") if device is None else device,
    )
    with torch.no_grad():
        images = _as_images(decode(z), (height, width), "decode(z) output")
    if len(images) != n * n:
        raise ValueError(
            f"decode(z) output: expected {n * n} images, one per latent point, got {len(images)}"
        )

    fig = _image_figure(_tile(images, n), panels=1, labelled=True, titled=True)
    ax = fig.add_subplot()
    _image_panel(ax, images, n, f"Decoder means over the latent grid ({n} x {n})")
    ax.set_axis_on()
    # A few ticks at tile centres, labelled with their latent coordinate.
    ticks = np.unique(np.linspace(0, n - 1, min(n, 5)).round().astype(int))
    # Rounding first and adding 0.0 turn the middle quantile's -1e-17 into "0.00", not "-0.00".
    names = [f"{round(q, 2) + 0.0:.2f}" for q in quantiles]
    ax.set_xticks(1 + ticks * (width + 1) + (width - 1) / 2, [names[j] for j in ticks])
    ax.set_yticks(1 + ticks * (height + 1) + (height - 1) / 2, [names[n - 1 - i] for i in ticks])
    ax.set(xlabel="$z_1$", ylabel="$z_2$")
    return _save(fig, path)


def _label_colours(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """(classes, per-point colour values, categorical?) for ``labels``."""
    classes, codes = np.unique(labels, return_inverse=True)
    categorical = len(classes) <= _MAX_CATEGORIES
    numeric = np.issubdtype(labels.dtype, np.number)
    return classes, (labels.astype(float) if numeric and not categorical else codes), categorical


def plot_latents(
    z: ArrayLike,
    path: PathLike,
    *,
    labels: ArrayLike | None = None,
    title: str = "Latent means",
) -> Path:
    """Write a picture of latent vectors (e.g. encoder means), coloured by label.

    d == 1 gives a histogram (one per class when labelled), d == 2 a scatter of the two
    coordinates, d > 2 a scatter of the first two principal components. Up to 10 classes get
    tab10 colours and a legend; more (or continuous labels) get a viridis colour bar, and for
    d == 1 a scatter of z against the label.

    Arguments:
        z: latents, shape (N,) or (N, d), finite.
        path: the file to write; its extension picks the format.
        labels: one label per point, shape (N,); None for no colouring.
        title: the axes title.

    Returns:
        ``path`` as a :class:`pathlib.Path`.

    Example:
        >>> import torch
        >>> plot_latents(torch.randn(500, 10), "out/latents.png",
        ...              labels=torch.randint(0, 10, (500,)))
        PosixPath('out/latents.png')
    """
    path = check_image_path(path)
    z = _as_rows(z, "z")
    count, dim = z.shape
    if labels is not None:
        labels = _to_numpy(labels, "labels")
        if labels.shape != (count,):
            raise ValueError(
                f"labels: expected shape ({count},), one per row of z, got {tuple(labels.shape)}"
            )
        classes, colour_values, categorical = _label_colours(labels)

    fig = Figure(figsize=(6.5, 5), layout="constrained")
    ax = fig.add_subplot()
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
        return _save(fig, path)

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
        fig.colorbar(ScalarMappable(norm=norm, cmap="viridis"), ax=ax, label="label")
    return _save(fig, path)


def _numeric_series(values: Any) -> np.ndarray | None:
    """``values`` as a 1-D float array (None as NaN), or None if not a sequence of numbers."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
        values = values.double().numpy() if values.is_floating_point() else values.numpy()
    if isinstance(values, np.ndarray):
        numeric = values.ndim == 1 and np.issubdtype(values.dtype, np.number)
        return values.astype(float) if numeric else None
    if not isinstance(values, (list, tuple)):
        return None
    series = []
    for value in values:
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if value is None:
            series.append(math.nan)
        elif isinstance(value, numbers.Real) and not isinstance(value, bool):
            series.append(float(value))
        else:
            return None
    return np.asarray(series, dtype=float)


def plot_curves(
    history: Mapping[str, list[float]],
    path: PathLike,
    *,
    title: str = "Training curves",
) -> Path:
    """Write per-epoch training curves, one line per numeric series of ``history``.

    Each non-empty sequence of numbers is drawn against epochs 1, 2, ...; series may differ
    in length. Entries that are NaN, infinite or None leave a gap in their line. Keys whose
    values are not sequences of numbers (a best epoch, a flag, a string) are left out.

    Arguments:
        history: maps names such as ``"train_loss"`` and ``"val_loss"`` to per-epoch values.
        path: the file to write; its extension picks the format.
        title: the axes title.

    Returns:
        ``path`` as a :class:`pathlib.Path`.

    Example:
        >>> plot_curves({"train_loss": [3.0, 2.1, 1.8], "val_loss": [3.1, 2.4]},
        ...             "out/curves.png")
        PosixPath('out/curves.png')
    """
    path = check_image_path(path)
    if not isinstance(history, Mapping):
        raise ValueError(
            f"history: expected a dict of name -> list of numbers, got a {type(history).__name__}"
        )
    series = {str(name): _numeric_series(values) for name, values in history.items()}
    series = {name: values for name, values in series.items() if values is not None and len(values)}
    if not series:
        raise ValueError(
            f"history: expected at least one non-empty list of numbers, got keys {list(history)}"
        )

    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    # matplotlib breaks a line at NaN and infinite points and leaves them out of the axis
    # limits, which is the gap wanted.
    for name, values in series.items():
        # Markers keep a lone epoch (a 1-epoch run, a point between gaps) visible; on long runs
        # they would only clutter the line.
        ax.plot(
            np.arange(1, len(values) + 1),
            values,
            label=name,
            marker="o" if len(values) <= 50 else None,
            markersize=3,
        )
    ax.set(xlabel="epoch", ylabel="value", title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)
