"""What every figure shares: input checks, the output file, and the Axes drawn on.

Each plotting function draws into the :class:`~matplotlib.axes.Axes` it is given (``ax=``), or
else on a :class:`~matplotlib.figure.Figure` of its own made with the Agg canvas rather than
through ``pyplot``: no window opens, no backend is forced, and a notebook's pyplot state is left
alone. With ``path`` it writes the figure there (the format follows the extension, creating
parent folders) and returns the path; without, it returns the figure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from matplotlib.axes import Axes
from matplotlib.backend_bases import FigureCanvasBase
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..rundir import write_atomically
from ..schema import Interval, check_value

__all__ = ["check_image_path", "axes_for", "finish", "ArrayLike", "PathLike"]

# numpy's ArrayLike covers arrays and nested sequences of numbers.
ArrayLike = torch.Tensor | npt.ArrayLike
PathLike = str | Path

_DPI = 100
# Grey between tiles, distinct from both the black background and the white ink of images.
PAD_VALUE = 0.5


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
    return int(check_value(name, value, Interval(int, minimum)))


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


def output_path(path: PathLike | None) -> Path | None:
    """``path`` checked (:func:`check_image_path`) before any drawing, or None."""
    return None if path is None else check_image_path(path)


def axes_for(ax: Any, panels: int, make_figure: Callable[[], Figure]) -> list[Axes]:
    """``panels`` Axes to draw on: the user's (an Axes, or a sequence of ``panels`` of them),
    or a row on a new figure from ``make_figure``."""
    if ax is None:
        return list(make_figure().subplots(1, panels, squeeze=False)[0])
    given = [ax] if isinstance(ax, Axes) else list(ax) if isinstance(ax, Sequence) else [ax]
    if len(given) != panels or not all(isinstance(a, Axes) for a in given):
        what = "a matplotlib Axes" if panels == 1 else f"a sequence of {panels} matplotlib Axes"
        got = type(ax).__name__ + ("" if isinstance(ax, Axes) else f" of {len(given)}")
        raise ValueError(f"ax: expected {what} for this figure's {panels} panel(s), got {got}")
    return given


def finish(ax: Axes, path: Path | None) -> Figure | Path:
    """The figure ``ax`` is on, or ``path`` after writing that figure there."""
    return ax.figure if path is None else _save(ax.figure, path)


def _save(fig: Figure, path: Path, dpi: float = _DPI) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    root = getattr(fig, "figure", None) or fig  # a subfigure's root figure is what saves
    if type(root.canvas) is FigureCanvasBase:  # a figure of our own: Agg, never a user's canvas
        FigureCanvasAgg(root)
    fmt = path.suffix.lstrip(".").lower()
    return write_atomically(path, lambda f: root.savefig(f, format=fmt, dpi=dpi))
