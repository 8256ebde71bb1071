r"""How labels reach a model: the calling convention of every pyromix model and guide.

A model and its guide are called with the data and, when the user revealed some labels, with
those labels and a mask saying which are revealed::

    model(x)                      # no labels revealed: unsupervised, exactly as before
    model(x, y, y_mask=y_mask)    # some (or all) training labels revealed

- ``x``: float tensor ``(B, D)``, the data only (binarisation and bits per dimension touch x
  alone).
- ``y``: int64 tensor ``(B,)``; where ``y_mask`` is False it holds the placeholder 0, which is a
  valid value of a categorical site, so that it never fails a distribution's support check.
- ``y_mask``: bool tensor ``(B,)``, True where the label was revealed. A batch may have none.

The same call is made by :func:`pyromix.train.fit` (training steps and validation),
:func:`pyromix.train.evaluate_loss` and :func:`pyromix.evaluate.log_likelihood`. Labels are
revealed on the training split only (``Dataset.reveal`` or ``pyromix fit --labeled N``): the
validation and test splits carry evaluation labels that no model sees, so held-out evidence is
``log p(x)`` with y summed out. Unsupervised recipes never see a label.

A model that uses labels writes Pyro's own idiom,
``pyro.sample("y", dist.Categorical(logits=...), obs=y, obs_mask=y_mask)``: Pyro then observes
``"y_observed"`` where the mask is True and samples (or enumerates) ``"y_unobserved"`` where it
is False, and its guide covers ``"y_unobserved"``. Both must accept the ``y_mask`` keyword;
:func:`accepts_labels` checks this before training, so a model that cannot take labels is
refused by name rather than failing mid-run. Models whose ``forward(x, y=None)`` ignores labels
are called as ``model(x)`` and need not change.

References:
    Pyro's ``obs_mask``: ``pyro.sample`` documentation and ``pyro.primitives._masked_observe``.
    Kingma et al. (2014), "Semi-supervised learning with deep generative models", M2.

Example:
    >>> import torch
    >>> batch = Batch(torch.zeros(3, 2), torch.tensor([4, 0, 1]), torch.tensor([True, False, True]))
    >>> args, kwargs = batch.call()
    >>> len(args), sorted(kwargs)
    (2, ['y_mask'])
    >>> Batch(torch.zeros(3, 2)).call()[1]
    {}
"""

from __future__ import annotations

import inspect
import numbers
from typing import Any, Callable, NamedTuple

import numpy as np
import torch

__all__ = ["MISSING", "Batch", "accepts_labels", "check_accepts_labels", "reveal_labels"]

#: A label that a user file marks as unknown, never revealed and never scored.
MISSING = -1


class Batch(NamedTuple):
    """One mini-batch as a model sees it.

    Attributes:
        x: data, shape ``(B, D)``.
        y: revealed labels with 0 where hidden, shape ``(B,)``; None when no label is revealed.
        y_mask: True where revealed, shape ``(B,)``; None exactly when ``y`` is None.
    """

    x: torch.Tensor
    y: torch.Tensor | None = None
    y_mask: torch.Tensor | None = None

    def call(self) -> tuple[tuple, dict[str, Any]]:
        """``(args, kwargs)`` for ``model(*args, **kwargs)`` in the module's convention."""
        if self.y is None:
            return (self.x,), {}
        return (self.x, self.y), {"y_mask": self.y_mask}

    def __len__(self) -> int:  # the number of points, not of fields
        return self.x.shape[0]


def accepts_labels(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` (a module, partial or function) can be called as ``fn(x, y, y_mask=m)``."""
    target = fn.forward if isinstance(fn, torch.nn.Module) else fn
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):  # a builtin or C callable: let the call itself decide
        return True
    kinds = {p.kind for p in parameters}
    return inspect.Parameter.VAR_KEYWORD in kinds or any(p.name == "y_mask" for p in parameters)


def check_accepts_labels(**programs: Callable[..., Any]) -> None:
    """Raise a one-line ValueError naming the first program that cannot take revealed labels."""
    for role, fn in programs.items():
        if not accepts_labels(fn):
            raise ValueError(
                f"{role}: labels were revealed (labeled > 0) but {role} takes no y_mask "
                "keyword; write forward(x, y=None, y_mask=None) (see pyromix.labels) or "
                "reveal no labels"
            )


def reveal_labels(y: torch.Tensor, labeled: int | float, seed: int) -> torch.Tensor:
    """Choose which labels to reveal: deterministic from ``seed`` and stratified by class.

    Arguments:
        y: labels of the training split, shape ``(N,)``; :data:`MISSING` (-1) marks unknown ones,
            which are never revealed.
        labeled: how many to reveal, an integer count, or a fraction in (0, 1] of the known
            labels (rounded to the nearest integer).
        seed: seeds the choice within each class.

    Returns:
        Bool mask ``(N,)``. Each class gets its share ``n * count_k / known``, the remainders
        going to the largest fractional parts (ties to the lower class), so 10 % of a balanced
        set reveals 10 % of every class.

    Example:
        >>> y = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, -1])
        >>> mask = reveal_labels(y, 0.5, seed=0)
        >>> int(mask.sum()), int(mask[:4].sum()), bool(mask[-1])
        (4, 2, False)
    """
    known = (y >= 0).cpu().numpy()
    count = _labeled_count(labeled, int(known.sum()))
    labels = y.cpu().numpy()
    classes, sizes = np.unique(labels[known], return_counts=True)
    shares = count * sizes / sizes.sum()
    quota = np.floor(shares).astype(int)
    order = sorted(range(len(classes)), key=lambda k: (-(shares[k] - quota[k]), k))
    quota[order[: count - quota.sum()]] += 1
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for k, c in enumerate(classes):
        members = np.flatnonzero(labels == c)
        mask[rng.permutation(members)[: quota[k]]] = True
    return torch.from_numpy(mask).to(y.device)


def _labeled_count(labeled: int | float, known: int) -> int:
    """``labeled`` as a count of known labels, or a one-line ValueError."""
    fraction = isinstance(labeled, numbers.Real) and not isinstance(labeled, numbers.Integral)
    if isinstance(labeled, bool) or not isinstance(labeled, numbers.Real):
        count = -1
    elif fraction:
        count = round(labeled * known) if 0 < labeled <= 1 else -1
    else:
        count = int(labeled) if 0 <= labeled <= known else -1
    if count < 0:
        raise ValueError(
            f"labeled: expected an integer in [0, {known}] (the known training labels) or a "
            f"fraction in (0, 1], got {labeled!r}"
        )
    return count
