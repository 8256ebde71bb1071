"""load_dataset: a registered dataset or user data, split into train/val/test by a seed."""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np
import torch

from .containers import DataError, Dataset, Split, check_binarize
from .files import user_data
from .registry import call_loader, registered_dataset
from .source import Source, check_options

__all__ = ["load_dataset"]


def load_dataset(
    data: str | os.PathLike | np.ndarray | torch.Tensor = "digits",
    *,
    seed: int = 0,
    labels: np.ndarray | torch.Tensor | str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    binarize: str = "none",
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    limit: int | None = None,
) -> Dataset:
    """Load a named dataset or user data, split into train/val/test deterministically by ``seed``.

    Named datasets (see ``DATASETS``; one of your own with :func:`register_dataset`):

    - ``digits``: scikit-learn's 8x8 digits, pixels / 16; split by the two fractions.
    - ``mnist``, ``fashion-mnist``: the four IDX files (raw or ``.gz``), looked for in
      ``data_dir``, then ``$PYROMIX_DATA`` and ``$PYROMIX_DATA/<name>``, then (Fashion-MNIST) in
      ``/usr/share/datasets/fashion-mnist``. Pixels / 255. Test is the official test set;
      validation is one sixth of the official train set drawn with ``seed`` (10,000 of 60,000,
      the papers' 50k/10k/10k); the fractions are not used.
    - ``onehot``: uniformly random 4-d one-hot vectors, 1,000/100/1,000; label = hot index.
    - ``mixture1d``: 50,000 points of 0.5 N(0.3, 0.05^2) + 0.5 N(0.7, 0.05^2); label = component;
      split by the two fractions.

    Anything else is user data: an array or tensor of shape ``(N, D)`` or ``(N, H, W)`` (images,
    flattened; ``image_shape`` is then ``(H, W)``), or a path to a ``.npy``, ``.npz`` (array
    ``x``, ``X`` or ``data``, or its only array; labels from ``y`` or ``labels``) or ``.csv``
    (numeric, comma-separated, optional header row). It is split by the two fractions, each
    split non-empty when its fraction is positive.

    Arguments:
        data: a registered name (``DATASETS``), a path, or an array.
        seed: seeds the split, the synthetic draws and the binarisation.
        labels: labels for user data (array, or a ``.npy``/``.csv`` path), -1 marking a missing
            label; overrides labels found in an ``.npz``. Labels are for evaluation: a model
            sees them only where :meth:`Dataset.reveal` reveals them.
        data_dir: directory with the MNIST or Fashion-MNIST IDX files.
        binarize: ``"none"``; ``"static"``, every split binarised once; or ``"dynamic"``, val and
            test binarised once and train freshly in every batch of
            :meth:`Dataset.train_batches`. Needs values in [0, 1].
        val_fraction, test_fraction: shares of the points for validation and test, each in
            [0, 1), summing to less than 1.
        limit: keep at most this many points in each split (for fast tests and tutorials).

    Returns:
        The :class:`Dataset`.

    References:
        OneHot: Takahashi et al. 2019, sec. 5.1, Table 1 (Takahashi et al. 2019). 1-D mixture: Lavda et al.,
        sec. 5.1 (Lavda et al. 2020). MNIST splits: Lavda et al., sec. 5.2; Takahashi et al., Table 1.

    Example:
        >>> ds = load_dataset("digits", limit=100)
        >>> ds.data_dim, ds.image_shape, len(ds.train), ds.num_classes
        (64, (8, 8), 100, 10)
    """
    check_binarize(binarize)
    check_options(seed, val_fraction, test_fraction, limit)
    rng = np.random.default_rng(seed)
    registered = registered_dataset(data)
    if registered is not None and labels is not None:
        raise DataError(f"labels is only for user data; {registered[0]!r} comes with its own labels")
    if registered is not None:
        source = _registered_source(*registered, rng, seed, data_dir, val_fraction, test_fraction)
    else:
        source = user_data(data, labels, rng, val_fraction, test_fraction)

    if binarize != "none":
        lo, hi = source.x.min() / source.scale, source.x.max() / source.scale
        if lo < 0 or hi > 1:
            raise DataError(
                f"binarize={binarize!r} needs data in [0, 1]; observed min {lo:g}, max {hi:g}"
            )

    def split(index: np.ndarray) -> Split:
        index = index[:limit]
        x = torch.from_numpy(source.x[index].astype(np.float32) / np.float32(source.scale))
        y = None if source.y is None else torch.from_numpy(source.y[index].astype(np.int64))
        return Split(x, y)

    train, val, test = (split(index) for index in source.parts)
    return Dataset(source.name, train, val, test, source.image_shape).binarized(binarize, seed)


def _registered_source(
    name: str,
    loader: Callable[..., Any],
    rng: np.random.Generator,
    seed: int,
    data_dir: str | os.PathLike | None,
    val_fraction: float,
    test_fraction: float,
) -> Source:
    """The points of a registered dataset: its loader's :class:`Source`, or its arrays checked
    and split as a user's are."""
    offered = dict(
        seed=seed, rng=rng, data_dir=data_dir, val_fraction=val_fraction, test_fraction=test_fraction
    )
    loaded = call_loader(name, loader, offered)
    if isinstance(loaded, Source):
        return loaded
    x, y = loaded if isinstance(loaded, tuple) and len(loaded) == 2 else (loaded, None)
    try:
        return user_data(x, y, rng, val_fraction, test_fraction, name=name)
    except DataError as error:
        raise DataError(f"dataset {name!r}: its loader's {error}") from None
