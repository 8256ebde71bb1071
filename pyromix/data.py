"""Datasets: scikit-learn digits (the default), MNIST and Fashion-MNIST from IDX files, the papers'
synthetic sets, and user arrays; all as float32 ``(N, D)`` tensors split into train/val/test.

Every bad input raises :class:`DataError` with a message that names the argument, what was
expected and what was given, before any model sees the data.
"""

from __future__ import annotations

import gzip
import math
import numbers
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from .labels import MISSING, Batch, reveal_labels

__all__ = [
    "DATASETS",
    "USER_SUFFIXES",
    "DataError",
    "Dataset",
    "Split",
    "batches",
    "binarize",
    "load_dataset",
]

DATASETS: dict[str, str] = {
    "digits": "8x8 handwritten digits from scikit-learn, 1,797 images, 10 classes (the default; "
    "no download)",
    "mnist": "28x28 handwritten digits from the IDX files, 50k/10k/10k; pass --data-dir",
    "fashion-mnist": "28x28 Zalando clothing images from the IDX files, 50k/10k/10k; "
    "apt-get install dataset-fashion-mnist",
    "onehot": "4-d one-hot vectors, 1,000/100/1,000 (Takahashi et al. 2019, sec. 5.1)",
    "mixture1d": "50,000 draws of 0.5 N(0.3, 0.05^2) + 0.5 N(0.7, 0.05^2) (Lavda et al., sec. 5.1)",
}

_BINARIZE = ("none", "static", "dynamic")
USER_SUFFIXES = (".npy", ".npz", ".csv")
_X_KEYS = ("x", "X", "data")
_Y_KEYS = ("y", "labels")

# IDX file stems (each may also be gzipped) and the magic numbers of unsigned-byte image (3-d)
# and label (1-d) files.
_IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_IMAGES_MAGIC, _LABELS_MAGIC = 2051, 2049
# Where Debian's dataset-fashion-mnist package puts the gzipped IDX files.
_SYSTEM_DIRS = {"fashion-mnist": ("/usr/share/datasets/fashion-mnist",)}
_HOW_TO_GET = {
    "fashion-mnist": "Install them with `apt-get install dataset-fashion-mnist` (to "
    "/usr/share/datasets/fashion-mnist), or pass --data-dir DIR (data_dir=DIR), or set "
    "PYROMIX_DATA=DIR.",
    "mnist": "Download the four MNIST IDX files yourself, then pass --data-dir DIR (data_dir=DIR) "
    "or set PYROMIX_DATA=DIR.",
}


class DataError(ValueError):
    """A bad data argument or file; the CLI prints its message on one line and exits with 2."""


@dataclass(frozen=True)
class Split:
    """One split of a dataset.

    Arguments:
        x: float32 tensor of shape ``(N, D)``; images are flattened row-major.
        y: int64 evaluation labels of shape ``(N,)`` (-1 where unknown), or None when there are
            none. No model sees them unless ``labeled`` reveals them.
        labeled: bool mask ``(N,)`` of the labels training may see (see :mod:`pyromix.labels`),
            or None: no label is revealed and models are called without labels.
    """

    x: torch.Tensor
    y: torch.Tensor | None = None
    labeled: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.x.dim() != 2:
            raise DataError(f"Split.x must have shape (N, D); got shape {tuple(self.x.shape)}")
        n = self.x.shape[0]
        for name, value in (("y", self.y), ("labeled", self.labeled)):
            if value is not None and tuple(value.shape) != (n,):
                raise DataError(
                    f"Split.{name} must have shape ({n},) to match x; "
                    f"got shape {tuple(value.shape)}"
                )
        if self.labeled is not None and (
            self.labeled.dtype != torch.bool
            or (self.labeled.any() and (self.y is None or (self.y[self.labeled] < 0).any()))
        ):
            raise DataError("Split.labeled must be a bool mask over known labels (y >= 0)")

    def to(self, device: torch.device | str) -> Split:
        """This split with its tensors on ``device``."""
        moved = (None if t is None else t.to(device) for t in (self.y, self.labeled))
        return Split(self.x.to(device), *moved)

    def batch(self, index: slice | torch.Tensor, x: torch.Tensor | None = None) -> Batch:
        """The points at ``index`` as a :class:`pyromix.labels.Batch` with the revealed labels
        only (``x`` replaces the data, e.g. by a fresh binarisation)."""
        x = self.x[index] if x is None else x
        if self.labeled is None:
            return Batch(x)
        mask = self.labeled[index]
        y = torch.zeros_like(mask, dtype=torch.long) if self.y is None else self.y[index]
        return Batch(x, torch.where(mask, y, 0), mask)

    def __len__(self) -> int:
        return self.x.shape[0]


@dataclass(frozen=True)
class Dataset:
    """A dataset split into train, validation and test sets, as :func:`load_dataset` returns it.

    Arguments:
        name: the dataset's name, or a user file's stem, or ``"array"``.
        train, val, test: the three splits.
        image_shape: ``(H, W)`` for image data, else None.
        binarize: ``"none"``, ``"static"`` (every split binarised once) or ``"dynamic"`` (val and
            test binarised once, train re-binarised in every batch by :meth:`train_batches`).
    """

    name: str
    train: Split
    val: Split
    test: Split
    image_shape: tuple[int, int] | None = None
    binarize: str = "none"

    def __post_init__(self) -> None:
        _check_binarize(self.binarize)

    @property
    def data_dim(self) -> int:
        """D, the number of features of a point."""
        return self.train.x.shape[1]

    @property
    def num_classes(self) -> int | None:
        """The number of distinct known labels over all splits, or None without labels."""
        ys = [s.y[s.y >= 0] for s in self._splits() if s.y is not None]
        return int(torch.unique(torch.cat(ys)).numel()) if ys else None

    def reveal(self, labeled: int | float, seed: int = 0) -> Dataset:
        """This dataset with ``labeled`` training labels revealed to the model.

        Arguments:
            labeled: a count, or a fraction in (0, 1] of the known training labels; 0 reveals
                none (the unsupervised default).
            seed: seeds the choice, stratified by class (:func:`pyromix.labels.reveal_labels`).

        Returns:
            The dataset, whose validation and test labels stay hidden (their masks are all
            False), so every split calls the model the same way, ``model(x, y, y_mask=...)``.

        Example:
            >>> ds = load_dataset("digits").reveal(0.1)
            >>> int(ds.train.labeled.sum()), bool(ds.val.labeled.any())
            (126, False)
        """
        if self.train.y is None:
            raise DataError(f"labeled: the {self.name!r} data has no labels to reveal")
        mask = reveal_labels(self.train.y, labeled, seed)
        if not mask.any():
            return self
        hidden = {
            k: replace(s, labeled=torch.zeros(len(s), dtype=torch.bool, device=s.x.device))
            for k, s in (("val", self.val), ("test", self.test))
        }
        return replace(self, train=replace(self.train, labeled=mask), **hidden)

    @property
    def is_binary(self) -> bool:
        """Whether every value a model will see is 0 or 1 (a Bernoulli likelihood fits)."""
        if self.binarize != "none":
            return True
        return all(bool(((s.x == 0) | (s.x == 1)).all()) for s in self._splits())

    def binarized(self, mode: str, seed: int = 0) -> Dataset:
        """This dataset of [0, 1] intensities binarised as ``mode`` says (see ``binarize``).

        Val and test are drawn before train, from one generator seeded with ``seed``, so
        ``"static"`` and ``"dynamic"`` evaluate on the very same binarised held-out points.
        """
        _check_binarize(mode)
        if mode == "none":
            return self
        if self.binarize != "none":
            raise DataError(f"binarize: this dataset is already binarised ({self.binarize!r})")
        generator = torch.Generator().manual_seed(int(seed))
        # Labels are left alone: binarisation touches x only.
        val, test = (replace(s, x=binarize(s.x, generator)) for s in (self.val, self.test))
        train = (
            replace(self.train, x=binarize(self.train.x, generator))
            if mode == "static"
            else self.train
        )
        return replace(self, train=train, val=val, test=test, binarize=mode)

    def to(self, device: torch.device | str) -> Dataset:
        """This dataset with every split on ``device``."""
        return replace(self, **{k: getattr(self, k).to(device) for k in ("train", "val", "test")})

    def train_batches(
        self, batch_size: int, generator: torch.Generator | None = None, *, labeled: bool = False
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]] | Iterator[Batch]:
        """One epoch of shuffled train mini-batches ``(x, y)``; the last short batch is kept.

        With ``binarize="dynamic"`` every batch is a fresh Bernoulli draw from the intensities,
        drawn from ``generator`` too, so a seeded generator repeats a run exactly.

        Arguments:
            batch_size: points per batch, a positive integer.
            generator: random source for the order and the draws; its device may differ from
                the data's.
            labeled: yield :class:`pyromix.labels.Batch` es with the revealed labels only (what
                a model sees) instead of ``(x, y)`` with the evaluation labels.

        Returns:
            An iterator over ``(x, y)`` with ``y`` None when the dataset has no labels.

        References:
            Dynamic binarisation of MNIST: Lavda et al., sec. 5.2 (Lavda et al. 2020).

        Example:
            >>> ds = load_dataset("onehot", binarize="dynamic")
            >>> x, y = next(ds.train_batches(100, torch.Generator().manual_seed(0)))
            >>> tuple(x.shape), tuple(y.shape)
            ((100, 4), (100,))
        """
        split = self.train
        for index in _batch_indices(split, batch_size, shuffle=True, generator=generator):
            x = split.x[index]
            x = _bernoulli(x, generator) if self.binarize == "dynamic" else x
            yield split.batch(index, x) if labeled else (x, _take(split.y, index))

    def _splits(self) -> tuple[Split, Split, Split]:
        return self.train, self.val, self.test


def binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A Bernoulli draw with success probabilities ``x``.

    Arguments:
        x: intensities in [0, 1].
        generator: random source; its device may differ from ``x``'s.

    Returns:
        A tensor like ``x`` (float) of zeros and ones.

    Example:
        >>> binarize(torch.tensor([0.0, 1.0, 1.0]))
        tensor([0., 1., 1.])
    """
    if not isinstance(x, torch.Tensor):
        raise DataError(f"x must be a torch.Tensor; got {type(x).__name__}")
    if bool(x.isnan().any()):
        raise DataError(f"x must be in [0, 1] to binarize; got {int(x.isnan().sum())} NaN values")
    if x.numel() and not bool(((x >= 0) & (x <= 1)).all()):
        raise DataError(
            f"x must be in [0, 1] to binarize; got min {x.min().item():g}, max {x.max().item():g}"
        )
    return _bernoulli(x, generator)


def batches(
    split: Split,
    batch_size: int,
    *,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    labeled: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]] | Iterator[Batch]:
    """Mini-batches ``(x, y)`` of a split, in order or shuffled; the last short batch is kept.

    Arguments:
        split: the split to walk through.
        batch_size: points per batch, a positive integer.
        shuffle: visit the points in a random order drawn from ``generator``.
        generator: random source for the order; its device may differ from the data's.
        labeled: yield :class:`pyromix.labels.Batch` es with the revealed labels only (what a
            model sees) instead of ``(x, y)`` with the evaluation labels.

    Returns:
        An iterator over ``(x, y)`` with ``y`` None when the split has no labels.

    Example:
        >>> split = Split(torch.zeros(5, 2))
        >>> [len(x) for x, _ in batches(split, 2)]
        [2, 2, 1]
    """
    for index in _batch_indices(split, batch_size, shuffle=shuffle, generator=generator):
        yield split.batch(index) if labeled else (split.x[index], _take(split.y, index))


def _batch_indices(
    split: Split, batch_size: int, *, shuffle: bool, generator: torch.Generator | None
) -> Iterator[slice | torch.Tensor]:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise DataError(f"batch_size must be a positive integer; got {batch_size!r}")
    n = len(split)
    order = None
    if shuffle:
        order = torch.randperm(n, generator=generator, device=_rng_device(generator, split.x))
        order = order.to(split.x.device)
    for start in range(0, n, batch_size):
        end = start + batch_size
        yield slice(start, end) if order is None else order[start:end]


def _take(y: torch.Tensor | None, index: slice | torch.Tensor) -> torch.Tensor | None:
    return None if y is None else y[index]


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

    Named datasets (see ``DATASETS``):

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
        data: a name from ``DATASETS``, a path, or an array.
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
    _check_binarize(binarize)
    _check_options(seed, val_fraction, test_fraction, limit)
    rng = np.random.default_rng(seed)
    builtin = data.lower() if isinstance(data, str) and data.lower() in DATASETS else None
    if builtin is not None and labels is not None:
        raise DataError(f"labels is only for user data; {builtin!r} comes with its own labels")
    if builtin == "digits":
        source = _digits(rng, val_fraction, test_fraction)
    elif builtin in ("mnist", "fashion-mnist"):
        source = _idx_dataset(builtin, data_dir, rng)
    elif builtin == "onehot":
        source = _onehot(rng)
    elif builtin == "mixture1d":
        source = _mixture1d(rng, val_fraction, test_fraction)
    else:
        source = _user_data(data, labels, rng, val_fraction, test_fraction)

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


class _Source(NamedTuple):
    """Data before splitting: ``x`` (N, D) of any numeric dtype, divided by ``scale`` on use."""

    name: str
    x: np.ndarray
    y: np.ndarray | None
    image_shape: tuple[int, int] | None
    parts: tuple[np.ndarray, np.ndarray, np.ndarray]  # train, val, test indices into x
    scale: float = 1.0


def _rng_device(generator: torch.Generator | None, x: torch.Tensor) -> torch.device:
    # A generator only draws on its own device; without one, draw where the data lives.
    return x.device if generator is None else generator.device


def _bernoulli(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    u = torch.rand(x.shape, generator=generator, device=_rng_device(generator, x))
    return (u.to(x.device) < x).to(x.dtype if x.is_floating_point() else torch.float32)


def _check_binarize(value: object) -> None:
    if value not in _BINARIZE:
        choices = ", ".join(repr(c) for c in _BINARIZE)
        raise DataError(f"binarize must be one of {choices}; got {value!r}")


def _check_options(
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


def _random_parts(
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


def _digits(rng: np.random.Generator, val_fraction: float, test_fraction: float) -> _Source:
    from sklearn.datasets import load_digits

    digits = load_digits()
    parts = _random_parts(len(digits.target), rng, val_fraction, test_fraction)
    return _Source("digits", digits.data, digits.target, (8, 8), parts, scale=16.0)


def _onehot(rng: np.random.Generator) -> _Source:
    sizes = (1000, 100, 1000)  # train, val, test: Takahashi et al., Table 1
    hot = rng.integers(0, 4, size=sum(sizes))
    ends = np.cumsum(sizes)
    parts = (np.arange(0, ends[0]), np.arange(ends[0], ends[1]), np.arange(ends[1], ends[2]))
    return _Source("onehot", np.eye(4)[hot], hot, None, parts)


def _mixture1d(rng: np.random.Generator, val_fraction: float, test_fraction: float) -> _Source:
    n, means, std = 50_000, np.array([0.3, 0.7]), 0.05
    component = rng.integers(0, 2, size=n)
    x = means[component] + std * rng.standard_normal(n)
    parts = _random_parts(n, rng, val_fraction, test_fraction)
    return _Source("mixture1d", x[:, None], component, None, parts)


def _idx_dataset(
    name: str, data_dir: str | os.PathLike | None, rng: np.random.Generator
) -> _Source:
    files = _find_idx(name, data_dir)
    arrays = {
        key: _read_idx(path, _IMAGES_MAGIC if key.endswith("images") else _LABELS_MAGIC)
        for key, path in files.items()
    }
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if len(images) != len(labels):
            raise DataError(
                f"{files[f'{part}_images']} has {len(images)} images but "
                f"{files[f'{part}_labels']} has {len(labels)} labels"
            )
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise DataError(
            f"train images are {arrays['train_images'].shape[1:]} but test images are "
            f"{arrays['test_images'].shape[1:]}; the IDX files do not belong together"
        )
    n_train, n_test = len(arrays["train_images"]), len(arrays["test_images"])
    if n_train < 2 or n_test < 1:
        raise DataError(f"{name}: need >= 2 train and >= 1 test images; got {n_train}, {n_test}")
    n_val = max(1, round(n_train / 6))  # 10,000 of the official 60,000
    order = rng.permutation(n_train)
    parts = (order[n_val:], order[:n_val], np.arange(n_train, n_train + n_test))
    x = np.concatenate([arrays["train_images"], arrays["test_images"]])
    y = np.concatenate([arrays["train_labels"], arrays["test_labels"]])
    height, width = x.shape[1:]
    return _Source(name, x.reshape(len(x), -1), y, (height, width), parts, scale=255.0)


def _find_idx(name: str, data_dir: str | os.PathLike | None) -> dict[str, Path]:
    dirs = [] if data_dir is None else [Path(data_dir).expanduser()]
    env = os.environ.get("PYROMIX_DATA")
    if env:
        dirs += [Path(env).expanduser(), Path(env).expanduser() / name]
    dirs += [Path(d) for d in _SYSTEM_DIRS.get(name, ())]
    looked = []
    for directory in dirs:
        found = {}
        for key, stem in _IDX_FILES.items():
            path = next(
                (p for p in (directory / stem, directory / f"{stem}.gz") if p.is_file()), None
            )
            if path is not None:
                found[key] = path
        if len(found) == len(_IDX_FILES):
            return found
        missing = [stem for key, stem in _IDX_FILES.items() if key not in found]
        looked.append(
            f"{directory} (missing {', '.join(missing)})"
            if directory.is_dir()
            else f"{directory} (no such directory)"
        )
    where = "; ".join(looked) or "nowhere (no data_dir given and PYROMIX_DATA is not set)"
    raise DataError(
        f"{name} IDX files not found; looked in: {where}. Expected "
        f"{', '.join(_IDX_FILES.values())} (each raw or .gz). {_HOW_TO_GET[name]}"
    )


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """An unsigned-byte IDX file (raw or gzipped) as an array of the shape in its header."""
    kind = "images" if magic == _IMAGES_MAGIC else "labels"
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":  # the gzip signature, so a misnamed file still loads
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: cannot read or decompress: {err}") from err
    if len(raw) < 4:
        raise DataError(f"{path}: truncated IDX file: {len(raw)} bytes, shorter than a header")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise DataError(f"{path}: not an IDX {kind} file: magic number {found}, expected {magic}")
    ndim = magic & 0xFF  # the magic's last byte is the number of dimensions
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX file: {len(raw)} bytes, header needs {header}")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    size = math.prod(shape)
    if len(raw) - header != size:
        problem = "truncated IDX file" if len(raw) - header < size else "IDX file too long"
        raise DataError(
            f"{path}: {problem}: header says shape {shape} = {size} bytes of data, "
            f"found {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=np.uint8, count=size, offset=header).reshape(shape)


def _user_data(
    data: object,
    labels: object,
    rng: np.random.Generator,
    val_fraction: float,
    test_fraction: float,
) -> _Source:
    name, file_labels = "array", None
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
    parts = _random_parts(len(x), rng, val_fraction, test_fraction)
    return _Source(name, x, y, image_shape, parts)


def _user_path(value: str | os.PathLike) -> Path:
    path = Path(value).expanduser()
    if path.suffix.lower() in USER_SUFFIXES:
        if not path.is_file():
            raise DataError(f"data file not found: {path}")
        return path
    if path.exists():
        raise DataError(f"data must be a .npy, .npz or .csv file; got {path}")
    raise DataError(
        f"data: unknown dataset {os.fspath(value)!r}; expected one of "
        f"{', '.join(DATASETS)}, or a path to a .npy, .npz or .csv file"
    )


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
