"""Training curves: one line per numeric series of a history, against epochs."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .common import PathLike, axes_for, finish, output_path

__all__ = ["plot_curves"]


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
    path: PathLike | None = None,
    *,
    title: str = "Training curves",
    ax: Axes | None = None,
) -> Figure | Path:
    """Draw per-epoch training curves, one line per numeric series of ``history``.

    Each non-empty sequence of numbers is drawn against epochs 1, 2, ...; series may differ
    in length. Entries that are NaN, infinite or None leave a gap in their line. Keys whose
    values are not sequences of numbers (a best epoch, a flag, a string) are left out.

    Arguments:
        history: maps names such as ``"train_loss"`` and ``"val_loss"`` to per-epoch values.
        path: the file to write, its extension picking the format; None writes none.
        title: the axes title.
        ax: a matplotlib Axes to draw into; a figure of its own by default.

    Returns:
        ``path`` as a :class:`pathlib.Path` when given; else the figure drawn on
        (``ax.figure`` with ``ax``).

    Example:
        >>> plot_curves({"train_loss": [3.0, 2.1, 1.8], "val_loss": [3.1, 2.4]},
        ...             "out/curves.png")
        PosixPath('out/curves.png')
    """
    path = output_path(path)
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

    (ax,) = axes_for(ax, 1, lambda: Figure(figsize=(7, 4.5), layout="constrained"))
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
    return finish(ax, path)
