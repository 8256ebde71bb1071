"""The shipped datasets, registered as a user's would be (:func:`register_dataset`)."""

from __future__ import annotations

import functools

import numpy as np

from .idx import idx_dataset
from .registry import register_dataset
from .source import Source, random_parts

__all__: list[str] = []


def _digits(rng: np.random.Generator, val_fraction: float, test_fraction: float) -> Source:
    from sklearn.datasets import load_digits

    digits = load_digits()
    parts = random_parts(len(digits.target), rng, val_fraction, test_fraction)
    return Source("digits", digits.data, digits.target, (8, 8), parts, scale=16.0)


def _onehot(rng: np.random.Generator) -> Source:
    sizes = (1000, 100, 1000)  # train, val, test: Takahashi et al., Table 1
    hot = rng.integers(0, 4, size=sum(sizes))
    ends = np.cumsum(sizes)
    parts = (np.arange(0, ends[0]), np.arange(ends[0], ends[1]), np.arange(ends[1], ends[2]))
    return Source("onehot", np.eye(4)[hot], hot, None, parts)


def _mixture1d(rng: np.random.Generator, val_fraction: float, test_fraction: float) -> Source:
    n, means, std = 50_000, np.array([0.3, 0.7]), 0.05
    component = rng.integers(0, 2, size=n)
    x = means[component] + std * rng.standard_normal(n)
    parts = random_parts(n, rng, val_fraction, test_fraction)
    return Source("mixture1d", x[:, None], component, None, parts)


register_dataset(
    "digits",
    _digits,
    description="8x8 handwritten digits from scikit-learn, 1,797 images, 10 classes (the default; "
    "no download)",
)
register_dataset(
    "mnist",
    functools.partial(idx_dataset, "mnist"),
    description="28x28 handwritten digits from the IDX files, 50k/10k/10k; pass --data-dir",
)
register_dataset(
    "fashion-mnist",
    functools.partial(idx_dataset, "fashion-mnist"),
    description="28x28 Zalando clothing images from the IDX files, 50k/10k/10k; "
    "apt-get install dataset-fashion-mnist",
)
register_dataset(
    "onehot",
    _onehot,
    description="4-d one-hot vectors, 1,000/100/1,000 (Takahashi et al. 2019, sec. 5.1)",
)
register_dataset(
    "mixture1d",
    _mixture1d,
    description="50,000 draws of 0.5 N(0.3, 0.05^2) + 0.5 N(0.7, 0.05^2) (Lavda et al. 2020, "
    "sec. 5.1)",
)
