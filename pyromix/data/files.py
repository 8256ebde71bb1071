"""User data: arrays, and ``.npy`` / ``.npz`` / ``.csv`` files with optional labels, checked
before any model sees them."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from ..labels import MISSING
from .containers import DataError
from .registry import unknown_dataset
from .source import Source, random_parts

__all__ = ["USER_SUFFIXES", "user_data"]

USER_SUFFIXES = (".npy", ".npz", ".csv")
_X_KEYS = ("x", "X", "data")
_Y_KEYS = ("y", "labels")


def user_data(
    data: object,
    labels: object,
    rng: np.random.Generator,
    val_fraction: float,
    test_fraction: float,
    name: str = "array",
) -> Source:
    """The points of an array or file (labels from ``labels`` or an ``.npz``), checked and split
    by the two fractions; ``name`` is the dataset's name for an array."""
    file_labels = None
    if isinstance(data, (str, os.PathLike)):
        path = _user_path(data)
        name = path.stem
        data, file_labels = _read_data_file(path)
    x = _numeric(data, "data")
    if x.ndim not in (2, 3):
        hint = " (use x.reshape(-1, 1) for 1-d points)" if x.ndim == 1 else ""
        raise DataError(
            f"data must have shape (N, D) or (N, H, W); got {x.ndim}-d shape {x.shape}{hint}"
        )
    if x.shape[0] < 3 or math.prod(x.shape[1:]) == 0:
        raise DataError(
            f"data needs at least 3 points with at least 1 feature; got shape {x.shape}"
        )
    _check_finite(x, "data")
    image_shape = (x.shape[1], x.shape[2]) if x.ndim == 3 else None
    x = x.reshape(len(x), -1)

    if labels is not None:
        file_labels = _read_labels(labels)
    y = None if file_labels is None else _integer_labels(file_labels, len(x))
    parts = random_parts(len(x), rng, val_fraction, test_fraction)
    return Source(name, x, y, image_shape, parts)


def _user_path(value: str | os.PathLike) -> Path:
    path = Path(value).expanduser()
    if path.suffix.lower() in USER_SUFFIXES:
        if not path.is_file():
            raise DataError(f"data file not found: {path}")
        return path
    if path.exists():
        raise DataError(f"data must be a .npy, .npz or .csv file; got {path}")
    raise unknown_dataset(os.fspath(value))


def _read_data_file(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """The data array of a user file and the labels stored with it (``.npz`` only)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path), None
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False), None
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError) as err:
        raise DataError(f"{path}: cannot read as {suffix}: {err}") from err
    x_key = next((k for k in _X_KEYS if k in arrays), None)
    if x_key is None and len(arrays) == 1:
        x_key = next(iter(arrays))
    if x_key is None:
        raise DataError(
            f"{path}: cannot tell which array is the data; expected a key in "
            f"{', '.join(_X_KEYS)} or a single array; got keys {', '.join(arrays) or '(none)'}"
        )
    y_key = next((k for k in _Y_KEYS if k in arrays), None)
    return arrays[x_key], (None if y_key is None else arrays[y_key])


def _read_csv(path: Path) -> np.ndarray:
    """A numeric comma-separated file; a byte-order mark (as spreadsheets write) is skipped.

    The first line is a header when none of its fields is a number; one that mixes numbers and
    text is refused, since a typo in the first data row would otherwise make it a header and
    lose that point.
    """
    try:
        with path.open(encoding="utf-8-sig") as f:
            first = f.readline()
    except UnicodeDecodeError as err:
        raise DataError(
            f"data: {path} is not a text CSV file (byte {err.start} is not UTF-8); expected "
            "comma-separated numbers"
        ) from None
    if not first.strip():
        raise DataError(f"{path}: the first line is empty; expected numbers or a header row")
    fields = [field.strip() for field in first.split(",")]
    numbers = [_is_number(field) for field in fields]
    if any(numbers) and not all(numbers):
        text = fields[numbers.index(False)]
        raise DataError(
            f"{path}: line 1 mixes numbers and text ({text!r} is not a number); expected a "
            "header of column names or a row of numbers"
        )
    try:
        return np.loadtxt(
            path, delimiter=",", skiprows=0 if all(numbers) else 1, ndmin=2, encoding="utf-8-sig"
        )
    except ValueError as err:  # UnicodeDecodeError included
        raise DataError(f"{path}: not a numeric comma-separated file: {err}") from err


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_labels(labels: object) -> np.ndarray:
    if not isinstance(labels, (str, os.PathLike)):
        return _numeric(labels, "labels")
    path = Path(labels).expanduser()
    if path.suffix.lower() not in (".npy", ".csv"):
        raise DataError(f"labels must be an array or a .npy or .csv path; got {path}")
    if not path.is_file():
        raise DataError(f"labels file not found: {path}")
    if path.suffix.lower() == ".csv":
        return _read_csv(path)
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise DataError(f"{path}: cannot read as .npy: {err}") from err


def _numeric(value: object, argument: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        # NumPy has no bfloat16; every float becomes float32 in the end anyway.
        value = value.float() if value.is_floating_point() else value
        value = value.numpy()
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as err:
        raise DataError(f"{argument} must be a numeric array; got {type(value).__name__}") from err
    if array.dtype.kind not in "biuf":
        raise DataError(f"{argument} must be numeric; got an array of dtype {array.dtype}")
    return array


# Data becomes float32: a larger magnitude would turn into inf there.
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _check_finite(array: np.ndarray, argument: str, limit: float = _FLOAT32_MAX) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataError(
            f"{argument} has {int(bad.sum())} NaN or inf values; the first is "
            f"{array[first]} at index {first}"
        )
    large = np.abs(array.astype(np.float64)) > limit
    if large.any():
        first = tuple(int(i) for i in np.argwhere(large)[0])
        raise DataError(
            f"{argument} has {int(large.sum())} values beyond +-{limit:.3g}, which its type "
            f"cannot hold; the first is {array[first]} at index {first}"
        )


def _integer_labels(labels: np.ndarray, n: int) -> np.ndarray:
    labels = _numeric(labels, "labels")
    labels = labels.reshape(-1) if labels.ndim == 2 and 1 in labels.shape else labels
    if labels.shape != (n,):
        raise DataError(f"labels must have shape ({n},), one per data point; got {labels.shape}")
    _check_finite(labels, "labels", limit=2.0**62)  # int64 labels
    if labels.dtype.kind == "f" and (labels != np.round(labels)).any():
        raise DataError("labels must be integers; got non-integer values")
    if (labels < MISSING).any():
        raise DataError(
            f"labels must be integers >= 0, or {MISSING} for a missing label; got {labels.min():g}"
        )
    return labels.astype(np.int64)
