"""Training schedules as small callables of the (0-based) epoch."""

from __future__ import annotations

from typing import Callable, Union

__all__ = ["KLWarmup", "constant", "Weight", "weight_at"]

Weight = Union[float, Callable[[int], float]]


class KLWarmup:
    r"""Linear KL warm-up: the KL weight rises from 0 to ``beta`` over ``epochs`` epochs.

    ``weight(epoch) = beta * min(1, epoch / epochs)``; the first epoch trains the reconstruction
    term alone, and from epoch ``epochs`` on the full ELBO is optimised (seed 001, 5: "annealed
    from 0 to 1 during training" over 100 epochs; seed 004, 5.2).

    Arguments:
        epochs: length of the warm-up; 0 gives ``beta`` from the start.
        beta: the final weight (1 for the ELBO).
    """

    def __init__(self, epochs: int, beta: float = 1.0) -> None:
        if epochs < 0:
            raise ValueError(f"warm-up epochs: expected an integer >= 0, got {epochs}")
        if beta < 0:
            raise ValueError(f"beta: expected a number >= 0, got {beta}")
        self.epochs = int(epochs)
        self.beta = float(beta)

    def __call__(self, epoch: int) -> float:
        if self.epochs == 0:
            return self.beta
        return self.beta * min(1.0, epoch / self.epochs)

    def __repr__(self) -> str:
        return f"KLWarmup(epochs={self.epochs}, beta={self.beta})"


def constant(value: float) -> Callable[[int], float]:
    """A schedule that always returns ``value`` (a fixed beta)."""
    return lambda epoch: float(value)


def weight_at(weight: Weight, epoch: int) -> float:
    """Evaluate a number-or-schedule at ``epoch``."""
    return float(weight(epoch)) if callable(weight) else float(weight)
