"""How :func:`~pyromix.train.fit` tells divergence: non-finite values, a validation loss blown
up though finite, and what to blame when the very first step fails."""

from __future__ import annotations

import contextlib
import warnings
from typing import Iterator

from ..data import Dataset
from .history import History, TrainingDiverged

__all__ = [
    "non_finite_values",
    "diverged",
    "untrained_hint",
    "blown_up",
    "no_nan_warnings",
    "LARGE_DATA",
    "DIVERGENCE_FACTOR",
    "NAN_PARAMETERS",
    "BLOWN_UP",
]

# Data beyond this magnitude is blamed when the first step, before any update, is not finite.
LARGE_DATA = 1e4
#: A validation loss this many times worse than the loss before training means divergence,
#: though finite (weights grown so large that a likelihood gives its points ~exp(-1e30)).
DIVERGENCE_FACTOR = 1e6
NAN_PARAMETERS = "parameters (after a NaN gradient)"
BLOWN_UP = "a validation loss of"


def non_finite_values(error: Exception) -> bool:
    """Whether ``error`` is a distribution's argument check failing on NaN or infinite values.

    Example:
        >>> import torch
        >>> try:
        ...     torch.distributions.Normal(torch.tensor(float("nan")), 1.0)
        ... except ValueError as error:
        ...     non_finite_values(error)
        True

    With finite parameters this still means divergence: weights grown large overflow the
    activations to inf (a learning rate of 1e6), or the data does (values of 1e30).
    """
    return isinstance(error, ValueError) and "but found invalid values" in str(error)


def diverged(
    what: str, epoch: int, history: History, step: int | None = None, hint: str = ""
) -> TrainingDiverged:
    """Training stopped at ``epoch`` (0-based; ``step`` too, None for validation) on ``what``
    (non-finite values unless it says otherwise)."""
    where = f"epoch {epoch + 1}" + ("" if step is None else f", step {step + 1}")
    kept = f"the end of epoch {epoch}" if epoch else "their initial values"
    what = what if what.startswith(BLOWN_UP) else f"non-finite {what}"
    return TrainingDiverged(
        f"{what} at {where}; parameters restored to {kept} ({hint or 'try a lower learning rate'})",
        history,
    )


def untrained_hint(data: Dataset, kl_weight: float) -> str:
    """Why a run fails on its first step, before any update: the scale of its data, a KL weight
    that overflows, or else the model on this data."""
    largest = float(data.train.x.abs().max())
    if largest > LARGE_DATA:
        return f"before any update: the data reaches |x| = {largest:.3g}; standardise it"
    if kl_weight > 1:
        return (
            f"before any update: the objective overflows at a KL weight of {kl_weight:.3g}; "
            "lower --beta"
        )
    return (
        f"before any update: the initial model gives non-finite values on data within |x| <= "
        f"{largest:.3g}; standardise the data or check the model"
    )


def blown_up(val: float, initial: float | None) -> bool:
    """Whether a finite validation loss is ``DIVERGENCE_FACTOR`` (1e6) times worse than the
    loss per point before training (``initial``), with 1 nat as the least scale."""
    return initial is not None and val > initial + DIVERGENCE_FACTOR * max(1.0, abs(initial))


@contextlib.contextmanager
def no_nan_warnings() -> Iterator[None]:
    """Silence Pyro's "Encountered NaN" warnings: fit stops on a non-finite loss itself and
    says so in one line, which they would only precede."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Encountered NaN", category=UserWarning)
        yield
