"""Training schedules as small callables of the (0-based) epoch."""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence, Union

__all__ = [
    "KLWarmup",
    "StdAnnealing",
    "TemperatureAnnealing",
    "constant",
    "Weight",
    "weight_at",
]

Weight = Union[float, Callable[[int], float]]


class KLWarmup:
    r"""Linear KL warm-up: the KL weight rises from 0 to ``beta`` over ``epochs`` epochs.

    ``weight(epoch) = beta * min(1, epoch / epochs)``; the first epoch trains the reconstruction
    term alone, and from epoch ``epochs`` on the full ELBO is optimised (Lavda et al. 2020, 5: "annealed
    from 0 to 1 during training" over 100 epochs; Takahashi et al. 2019, 5.2).

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


class StdAnnealing:
    r"""Std annealing (Li et al. 2020, II-D): lower bounds on Gaussian stds that start large and shrink.

    ``eps(epoch) = start * factor ** (epoch // every)``, never below ``final``, and ``final`` for
    the last ``every`` epochs of a run of ``epochs`` (the paper: start 1, halve every 100 epochs,
    1e-4 at the end). Calling the schedule with an epoch sets ``std_min`` on every target (the
    Gaussian likelihood's eps_x, the guide's eps_z), so it plugs into the trainer's ``schedules``.

    Arguments:
        targets: objects with a ``std_min`` attribute.
        epochs: length of the run.
        every: epochs between halvings; default ``max(1, epochs // 10)`` scales the paper's
            schedule to the run length.
        start, factor, final: as above.
    """

    def __init__(
        self,
        targets: Sequence[Any],
        epochs: int,
        every: int | None = None,
        start: float = 1.0,
        factor: float = 0.5,
        final: float = 1e-4,
    ) -> None:
        if epochs < 1:
            raise ValueError(f"epochs: expected an integer >= 1, got {epochs}")
        if not 0 < factor < 1 or not 0 < final <= start:
            raise ValueError(
                f"expected 0 < factor < 1 and 0 < final <= start, got factor={factor}, "
                f"final={final}, start={start}"
            )
        missing = [t for t in targets if not hasattr(t, "std_min")]
        if missing:
            raise ValueError(f"targets: {missing[0]!r} has no std_min attribute to anneal")
        self.targets = list(targets)
        self.epochs = int(epochs)
        self.every = int(every) if every is not None else max(1, epochs // 10)
        self.start, self.factor, self.final = start, factor, final

    def value(self, epoch: int) -> float:
        if epoch >= self.epochs - self.every:
            return self.final
        return max(self.final, self.start * self.factor ** (epoch // self.every))

    def __call__(self, epoch: int) -> float:
        eps = self.value(epoch)
        for target in self.targets:
            target.std_min = eps
        return eps


class TemperatureAnnealing:
    r"""Exponential decay of a Gumbel-softmax temperature (Jang et al. 2017, 4).

    ``tau(epoch) = max(final, start * exp(-rate * epoch))`` with the rate chosen so that tau
    reaches ``final`` halfway through a run of ``epochs``: Jang et al.'s
    ``max(0.5, exp(-r t))`` scaled to the run length. Calling the schedule sets ``temperature``
    on the target (CP-VAE's guide, Lavda et al. (2020), 3.3).

    Arguments:
        target: object with a ``temperature`` attribute.
        epochs: length of the run.
        start, final: the first and the lowest temperature.
    """

    def __init__(self, target: Any, epochs: int, start: float = 1.0, final: float = 0.5) -> None:
        if epochs < 1:
            raise ValueError(f"epochs: expected an integer >= 1, got {epochs}")
        if not 0 < final <= start:
            raise ValueError(f"expected 0 < final <= start, got final={final}, start={start}")
        if not hasattr(target, "temperature"):
            raise ValueError(f"target: {target!r} has no temperature attribute to anneal")
        self.target, self.start, self.final = target, float(start), float(final)
        self.rate = math.log(start / final) / max(1.0, epochs / 2)

    def value(self, epoch: int) -> float:
        return max(self.final, self.start * math.exp(-self.rate * epoch))

    def __call__(self, epoch: int) -> float:
        self.target.temperature = self.value(epoch)
        return self.target.temperature
