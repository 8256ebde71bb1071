"""Data before splitting, and the seeded split into train, validation and test."""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from .containers import DataError

__all__ = ["Source", "check_options", "random_parts"]


class Source(NamedTuple):
    """Data before splitting: ``x`` (N, D) of any numeric dtype, divided by ``scale`` on use."""

    name: str
    x: np.ndarray
    y: np.ndarray | None
    image_shape: tuple[int, int] | None
    parts: tuple[np.ndarray, np.ndarray, np.ndarray]  # train, val, test indices into x
    scale: float = 1.0


def check_options(
    seed: object, val_fraction: object, test_fraction: object, limit: object
) -> None:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise DataError(f"seed must be a non-negative integer; got {seed!r}")
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
            raise DataError(f"{name} must be a number in [0, 1); got {value!r}")
    if val_fraction + test_fraction >= 1:
        raise DataError(
            "val_fraction + test_fraction must be less than 1 to leave training data; "
            f"got {val_fraction} + {test_fraction} = {val_fraction + test_fraction:g}"
        )
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, numbers.Integral) or limit < 1
    ):
        raise DataError(f"limit must be a positive integer or None; got {limit!r}")


def random_parts(
    n: int, rng: np.random.Generator, val_fraction: float, test_fraction: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train, val and test indices of a seeded permutation; a positive fraction gets >= 1 point."""
    n_test, n_val = (max(1, round(f * n)) if f > 0 else 0 for f in (test_fraction, val_fraction))
    if n - n_test - n_val < 1:
        raise DataError(
            f"{n} points leave no training data after {n_val} for validation and {n_test} for "
            "test; lower val_fraction/test_fraction or give more data"
        )
    order = rng.permutation(n)
    return order[n_test + n_val :], order[n_test : n_test + n_val], order[:n_test]
