"""The containers of data: a :class:`Split` (points, labels, revealed labels), a
:class:`Dataset` (train, validation, test), binarisation and mini-batches."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import torch

from ..labels import Batch, reveal_labels

__all__ = ["DataError", "Split", "Dataset", "binarize", "batches", "BINARIZE", "check_binarize"]

BINARIZE = ("none", "static", "dynamic")


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
        check_binarize(self.binarize)

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
            >>> from pyromix.data import load_dataset
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
        check_binarize(mode)
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
            >>> from pyromix.data import load_dataset
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


def _rng_device(generator: torch.Generator | None, x: torch.Tensor) -> torch.device:
    # A generator only draws on its own device; without one, draw where the data lives.
    return x.device if generator is None else generator.device


def _bernoulli(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    u = torch.rand(x.shape, generator=generator, device=_rng_device(generator, x))
    return (u.to(x.device) < x).to(x.dtype if x.is_floating_point() else torch.float32)


def check_binarize(value: object) -> None:
    if value not in BINARIZE:
        choices = ", ".join(repr(c) for c in BINARIZE)
        raise DataError(f"binarize must be one of {choices}; got {value!r}")
