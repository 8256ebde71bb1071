"""Image figures: a tiled grid, reconstructions under their originals, the 2-D latent manifold.

Image panels use the ``gray`` colour map with fixed limits 0 (black) and 1 (white), so a pixel's
shade is its value and never a rescaling that differs between figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .common import (
    _DPI,
    PAD_VALUE,
    ArrayLike,
    PathLike,
    _as_images,
    _check_image_shape,
    _check_positive_int,
    axes_for,
    finish,
    output_path,
)

__all__ = ["image_grid", "plot_reconstructions", "plot_manifold", "tile", "image_panel", "image_figure"]


def tile(images: np.ndarray, ncol: int) -> np.ndarray:
    """Images (N, H, W) as one (rows*(H+1)+1, ncol*(W+1)+1) array, row-major, 1 px padding."""
    n, height, width = images.shape
    nrows = math.ceil(n / ncol)
    grid = np.full((nrows * (height + 1) + 1, ncol * (width + 1) + 1), PAD_VALUE)
    for k, image in enumerate(images):
        top, left = 1 + (k // ncol) * (height + 1), 1 + (k % ncol) * (width + 1)
        grid[top : top + height, left : left + width] = image
    return grid


def _panel_size(grid: np.ndarray) -> tuple[float, float]:
    """Inches for an image panel: about 4 screen pixels per image pixel, 4 to 12 inches across."""
    longest = max(grid.shape)
    scale = min(max(4 * longest / _DPI, 4.0), 12.0) / longest
    return grid.shape[1] * scale, grid.shape[0] * scale


def image_panel(
    ax: Axes,
    images: np.ndarray,
    ncol: int,
    title: str | None = None,
    row_labels: list[str] | None = None,
) -> None:
    """Draw ``images`` tiled ``ncol`` per row on ``ax``; ``row_labels`` name each tile row."""
    grid = tile(images, ncol)
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


def image_figure(grid: np.ndarray, panels: int, labelled: bool, titled: bool) -> Figure:
    """A figure for ``panels`` image panels of the size of ``grid``."""
    width, height = _panel_size(grid)
    # Room for titles and for row labels on the left, which constrained layout then uses.
    return Figure(
        figsize=(panels * width + (1.5 if labelled else 0.2), height + (0.8 if titled else 0.2)),
        layout="constrained",
    )


def image_grid(
    images: ArrayLike,
    image_shape: tuple[int, int],
    path: PathLike | None = None,
    *,
    nrow: int | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure | Path:
    """Draw ``images`` as one tiled grayscale picture.

    Tiles are laid out row-major, ``nrow`` images per row (torchvision's ``make_grid``
    convention), separated by 1 px of grey. Pixel values are shown on the fixed scale
    0 = black, 1 = white; values outside [0, 1] are clipped.

    Arguments:
        images: N images, shape (N, H*W) or (N, H, W), values in [0, 1].
        image_shape: (H, W).
        path: the file to write, its extension picking the format; None writes none.
        nrow: images per row; default ``ceil(sqrt(N))``, a near-square grid.
        title: a title above the grid; none by default.
        ax: a matplotlib Axes to draw into; a figure of its own by default.

    Returns:
        ``path`` as a :class:`pathlib.Path` when given; else the figure drawn on
        (``ax.figure`` with ``ax``).

    Example:
        >>> import torch
        >>> image_grid(torch.rand(64, 64), (8, 8), "out/grid.png")
        PosixPath('out/grid.png')
    """
    path = output_path(path)
    images = _as_images(images, image_shape, "images")
    ncol = math.ceil(math.sqrt(len(images))) if nrow is None else _check_positive_int(nrow, "nrow")
    grid = tile(images, ncol)
    (axis,) = axes_for(ax, 1, lambda: image_figure(grid, 1, labelled=False, titled=bool(title)))
    image_panel(axis, images, ncol, title)
    return finish(axis, path)


def plot_reconstructions(
    x: ArrayLike,
    x_recon: ArrayLike,
    image_shape: tuple[int, int],
    path: PathLike | None = None,
    *,
    n: int = 16,
    ax: Axes | None = None,
) -> Figure | Path:
    """Draw the first ``n`` images above their reconstructions.

    Up to 16 images go in a row; more wrap into further pairs of rows, each pair an
    "original" row over a "reconstruction" row.

    Arguments:
        x: the data, shape (N, H*W) or (N, H, W).
        x_recon: its reconstructions (e.g. decoder means at the encoder means), same shape.
        image_shape: (H, W).
        path: the file to write, its extension picking the format; None writes none.
        n: how many images to show; all N when N is smaller.
        ax: a matplotlib Axes to draw into; a figure of its own by default.

    Returns:
        ``path`` as a :class:`pathlib.Path` when given; else the figure drawn on
        (``ax.figure`` with ``ax``).

    Example:
        >>> import torch
        >>> x = torch.rand(16, 64)
        >>> plot_reconstructions(x, x.clamp(0.2, 0.8), (8, 8), "out/recon.png")
        PosixPath('out/recon.png')
    """
    path = output_path(path)
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
    blank = np.full((npairs * ncol - count, height, width), PAD_VALUE)
    rows = [
        np.concatenate([a, blank]).reshape(npairs, ncol, height, width) for a in (originals, recons)
    ]
    tiles = np.stack(rows, axis=1).reshape(-1, height, width)

    grid = tile(tiles, ncol)
    (axis,) = axes_for(ax, 1, lambda: image_figure(grid, 1, labelled=True, titled=True))
    image_panel(
        axis,
        tiles,
        ncol,
        f"Reconstructions of the first {count} images",
        ["original", "reconstruction"] * npairs,
    )
    return finish(axis, path)


def plot_manifold(
    decode: Callable[[torch.Tensor], ArrayLike],
    path: PathLike | None = None,
    *,
    image_shape: tuple[int, int],
    n: int = 20,
    device: torch.device | str | None = None,
    ax: Axes | None = None,
) -> Figure | Path:
    """Draw the learned 2-D data manifold: decoded images over a grid of latent points.

    The latent points are ``norm.ppf(linspace(0.05, 0.95, n))`` on each axis, so equal steps
    of the grid cover equal probability under the N(0, 1) prior. Column j holds
    ``z_1 = q[j]`` (left to right, increasing) and row i holds ``z_2 = q[n-1-i]`` (increasing
    upwards, as on a plot); ``decode`` receives the n*n points in that row-major order.

    Arguments:
        decode: maps a float32 tensor of latent points, shape (M, 2), to decoder means, shape
            (M, H*W) or (M, H, W); called once, under ``torch.no_grad()``.
        path: the file to write, its extension picking the format; None writes none.
        image_shape: (H, W).
        n: points per axis (at least 2).
        device: where the latent grid is built; the CPU by default.
        ax: a matplotlib Axes to draw into; a figure of its own by default.

    Returns:
        ``path`` as a :class:`pathlib.Path` when given; else the figure drawn on
        (``ax.figure`` with ``ax``).

    References:
        Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014, fig. 4.

    Example:
        >>> plot_manifold(lambda z: model.decoder(z).mean, "out/manifold.png",
        ...               image_shape=(28, 28))  # doctest: +SKIP
    """
    # Imported here, as sklearn's PCA below: slow imports that only this function needs.
    from scipy.stats import norm

    path = output_path(path)
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

    grid = tile(images, n)
    (ax,) = axes_for(ax, 1, lambda: image_figure(grid, 1, labelled=True, titled=True))
    image_panel(ax, images, n, f"Decoder means over the latent grid ({n} x {n})")
    ax.set_axis_on()
    # A few ticks at tile centres, labelled with their latent coordinate.
    ticks = np.unique(np.linspace(0, n - 1, min(n, 5)).round().astype(int))
    # Rounding first and adding 0.0 turn the middle quantile's -1e-17 into "0.00", not "-0.00".
    names = [f"{round(q, 2) + 0.0:.2f}" for q in quantiles]
    ax.set_xticks(1 + ticks * (width + 1) + (width - 1) / 2, [names[j] for j in ticks])
    ax.set_yticks(1 + ticks * (height + 1) + (height - 1) / 2, [names[n - 1 - i] for i in ticks])
    ax.set(xlabel="$z_1$", ylabel="$z_2$")
    return finish(ax, path)
