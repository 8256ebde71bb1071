"""Callbacks: what :func:`~pyromix.train.fit` does besides the SVI steps, and how a user adds to it.

The loop raises five events, named as Lightning's ``Callback`` names its own: ``on_fit_start``,
``on_epoch_start``, ``on_step_end`` (after every optimiser step), ``on_epoch_end`` (after
validation, with the epoch in the history) and ``on_fit_end`` (however the call ends, also by an
error). Each receives the :class:`Loop`, the loop's state. A callback stops training with
:meth:`Loop.stop`; the loop ends after that epoch's ``on_epoch_end`` events.

fit's own behaviour is built the same way: the KL weight and epoch schedules, the step hooks,
the captured steps' record, early stopping, the progress bar and checkpoints are callbacks
(``pyromix.train.hooks``, ``pyromix.train.stopping``,
``pyromix.train.progress``, ``pyromix.train.checkpointing``,
``pyromix.train.capturing``). A user's callbacks run after fit's own and before the
checkpoint is written, so a stop they ask for is in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from ..data import Dataset
from ..labels import Batch
from .history import History

__all__ = ["Callback", "Loop", "EVENTS", "check_callbacks", "dispatch"]

EVENTS = ("on_fit_start", "on_epoch_start", "on_step_end", "on_epoch_end", "on_fit_end")


class Callback:
    """Base class of :func:`fit`'s callbacks: override the events you need; each does nothing
    by default and receives the :class:`Loop`.

    Example:
        >>> class StopAt(Callback):
        ...     def __init__(self, loss):
        ...         self.loss = loss
        ...     def on_epoch_end(self, loop):
        ...         if loop.history.val_loss[-1] < self.loss:
        ...             loop.stop(f"validation loss below {self.loss}")
        >>> history = fit(model, guide, data, Trace_ELBO(), callbacks=[StopAt(90.0)])  # doctest: +SKIP
    """

    def on_fit_start(self, loop: "Loop") -> None:
        """Before the first epoch of this call (after a resumed run's state is loaded)."""

    def on_epoch_start(self, loop: "Loop") -> None:
        """At the start of epoch ``loop.epoch``."""

    def on_step_end(self, loop: "Loop") -> None:
        """After the optimiser step on ``loop.batch``, whose loss is ``loop.loss``."""

    def on_epoch_end(self, loop: "Loop") -> None:
        """After validation; ``loop.history`` holds the epoch."""

    def on_fit_end(self, loop: "Loop") -> None:
        """When the call ends, normally or by an error."""


@dataclass
class Loop:
    """The state of a :func:`fit` call, as callbacks see it.

    Attributes:
        model, guide: the programs being trained (modules on the training device).
        optimizer: the torch optimiser.
        data: the dataset, on the training device.
        history: the :class:`History` so far (a resumed run's included).
        epochs: the total number of epochs asked for; ``start``: the first of this call.
        epoch, step: the current epoch (0-based) and step within it.
        batch, loss: the batch last trained on (this process's slice) and its loss in nats.
        good: the state at the end of the last epoch (programs, optimiser, step hooks), the
            fallback on a non-finite loss; ``best``: the best validation epoch's weights.
    """

    model: nn.Module
    guide: nn.Module
    optimizer: torch.optim.Optimizer
    data: Dataset
    history: History
    epochs: int
    start: int
    good: dict[str, Any]
    best: dict[str, Any] | None = None
    epoch: int = 0
    step: int = 0
    batch: Batch | None = None
    loss: float = float("nan")

    def stop(self, reason: str) -> None:
        """End training after this epoch, recording ``reason`` as ``history.stopped``."""
        if not isinstance(reason, str) or not reason:
            raise ValueError(f"stop: expected a non-empty reason, got {reason!r}")
        self.history.stopped = reason


def check_callbacks(callbacks: Any) -> list[Any]:
    """``callbacks`` as a list, refused in one line unless each has an event method."""
    if isinstance(callbacks, (str, bytes)) or not isinstance(callbacks, Sequence):
        raise ValueError(f"callbacks: expected a list of callbacks, got {type(callbacks).__name__}")
    for callback in callbacks:
        if not any(callable(getattr(callback, event, None)) for event in EVENTS):
            raise ValueError(
                f"callbacks: expected objects with any of {', '.join(EVENTS)} "
                f"(subclass pyromix.train.Callback), got {type(callback).__name__}"
            )
    return list(callbacks)


def dispatch(callbacks: Sequence[Any], event: str, loop: Loop) -> None:
    """Call ``event`` on every callback that has it, in order."""
    for callback in callbacks:
        method = getattr(callback, event, None)
        if method is not None:
            method(loop)
