"""The data set a batch was drawn from, for models that scale a global site: :func:`data_size`.

:func:`~pyromix.train.fit` and :func:`~pyromix.train.evaluate_loss` open a *walk* over a split
(a module-global stack, since the model is called by Pyro, not by pyromix); a model asking for
:func:`data_size` during the walk gets the split's size, and the walk then weighs the model's
whole-split loss estimates back to the split's per-point loss.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

__all__ = ["data_size", "walking"]


class _Walk:
    """The split a loop walks through, and whether the model asked for its size."""

    def __init__(self, size: int) -> None:
        self.size, self.asked = size, False

    def weight(self, batch_size: int) -> float:
        # A model that scales its data plate by N / B (data_size) returns a loss estimating the
        # whole split's objective; its share of the split's per-point loss is B / N of it.
        return batch_size / self.size if self.asked else 1.0


_walks: list[_Walk] = []


@contextlib.contextmanager
def walking(size: int) -> Iterator[_Walk]:
    """A walk over a split of ``size`` points, for the calls made inside the ``with`` block."""
    _walks.append(_Walk(size))
    try:
        yield _walks[-1]
    finally:
        _walks.pop()


def data_size(x: torch.Tensor) -> int:
    """N, the size of the data set that the batch ``x`` was drawn from.

    The training-set size during :func:`fit`'s steps, the validation split's size during
    validation, and ``len(x)`` elsewhere (importance-sampled evaluation weighs each point on its
    own). It is what a model with a global latent site needs for Pyro's subsampling scale, and
    :class:`History` then reports losses per data point all the same.

    Arguments:
        x: the batch the model was called with.

    Returns:
        An integer N >= len(x).

    Example:
        >>> def model(x, y=None):
        ...     w = pyro.sample("w", pyro.distributions.Normal(0.0, 1.0))  # global: once per N
        ...     with pyro.plate("data", data_size(x), subsample=x):
        ...         pyro.sample("x", pyro.distributions.Normal(w, 1.0).to_event(1), obs=x)
        >>> data_size(torch.zeros(3, 2))
        3
    """
    if not _walks:
        return x.shape[0]
    _walks[-1].asked = True
    return _walks[-1].size
