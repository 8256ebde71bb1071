"""What :func:`~pyromix.train.fit` records and hands out: the run's history, the step state,
the step-hook and loss-term contracts, and the error raised when training diverges."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Protocol

import torch
from torch import nn

from ..labels import Batch

__all__ = ["History", "FitState", "StepHook", "LossTerm", "TrainingDiverged", "EARLY_STOPPING"]

EARLY_STOPPING = "early stopping"  # how History.stopped begins when patience ran out


@dataclass
class History:
    """Per-epoch record of a run; losses are negative objectives in nats per data point.

    ``train_loss`` is the weighted objective actually optimised (KL weight ``kl_weight``);
    ``val_loss`` is the full objective (weight 1) on the validation split. ``best_epoch`` indexes
    the lowest ``val_loss``; ``stopped`` says why training ended before ``epochs`` ("" if not).
    ``capture`` reports the captured steps of the last :func:`fit` call (:mod:`pyromix.capture`):
    ``graphs`` captured, ``seconds`` spent capturing and checking them, and ``off``, why capture
    stopped ("" if it did not; ending in "the run was redone eagerly" when a re-check found
    replayed steps wrong and the call ran again eagerly).
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    kl_weight: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stopped: str = ""
    capture: dict[str, Any] = field(default_factory=dict)

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "History":
        return cls(**d)


@dataclass
class FitState:
    """What :func:`fit` passes to every step hook after an optimiser step.

    Attributes:
        epoch: 0-based epoch.
        step: 0-based step within the epoch.
        batch: the :class:`pyromix.labels.Batch` just trained on (as the model saw it).
        loss: the step's loss (objective plus extra terms), in nats.
        num_data: N, the training-set size.
        model, guide: the programs being trained.
        optimizer: the optimiser (to change learning rates per step, for example).
    """

    epoch: int
    step: int
    batch: Batch
    loss: float
    num_data: int
    model: nn.Module
    guide: nn.Module
    optimizer: torch.optim.Optimizer


class StepHook(Protocol):
    """Called by :func:`fit` after every optimiser step, with its state in the checkpoint.

    For training that interleaves other updates with the SVI steps, such as the discriminator
    steps of the implicit prior (:class:`pyromix.infer.DensityRatioSteps`), or per-step
    schedules. ``__call__`` receives the :class:`FitState` (a hook taking no argument is called
    without it).
    """

    def __call__(self, state: FitState) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


# An extra loss term(model, guide, batch); documented where users import it, pyromix.train.
LossTerm = Callable[[nn.Module, nn.Module, Batch], torch.Tensor]


class TrainingDiverged(RuntimeError):
    """A non-finite loss or gradient stopped training; the model holds the last good state.

    Attributes:
        history: the history up to the last completed epoch.
    """

    def __init__(self, message: str, history: History) -> None:
        super().__init__(message)
        self.history = history
