"""fit's schedules and step hooks, as callbacks: the KL weight and ``schedule(epoch)`` calls at
each epoch's start, the :class:`~pyromix.train.StepHook` s after each optimiser step."""

from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

from ..distributed import Replicas
from ..infer.scale import LatentScaleMessenger
from ..infer.schedules import Weight, weight_at
from .callback import Callback, Loop
from .history import FitState, StepHook

__all__ = ["EpochSchedules", "StepHooks"]


class EpochSchedules(Callback):
    """Set the KL weight of ``weighting`` to ``kl_weight`` at the epoch and run each
    ``schedule(epoch)`` (std annealing), at every epoch's start."""

    def __init__(
        self,
        weighting: LatentScaleMessenger,
        kl_weight: Weight,
        schedules: Sequence[Callable[[int], Any]],
    ) -> None:
        self.weighting, self.kl_weight, self.schedules = weighting, kl_weight, list(schedules)

    def on_epoch_start(self, loop: Loop) -> None:
        self.weighting.weight = weight_at(self.kl_weight, loop.epoch)
        for schedule in self.schedules:
            schedule(loop.epoch)


class StepHooks(Callback):
    """Call every step hook with the :class:`FitState` after each optimiser step; with several
    processes, rank 0's updates of the hooks' own parameters are broadcast to the others."""

    def __init__(self, hooks: Sequence[StepHook], replicas: Replicas) -> None:
        self.hooks = [_with_state(hook) for hook in hooks]
        self.parameters = [p for hook in hooks for p in getattr(hook, "parameters", list)()]
        self.replicas = replicas

    def on_step_end(self, loop: Loop) -> None:
        state = FitState(
            loop.epoch,
            loop.step,
            loop.batch,
            loop.loss,
            len(loop.data.train),
            loop.model,
            loop.guide,
            loop.optimizer,
        )
        for hook in self.hooks:
            hook(state)
        self.replicas.broadcast(self.parameters)


def _with_state(hook: StepHook) -> Callable[[FitState], None]:
    """``hook`` as a callable of the state; a hook written without an argument gets none."""
    try:
        takes_state = bool(inspect.signature(hook).parameters)
    except (TypeError, ValueError):
        takes_state = True
    return hook if takes_state else lambda state: hook()
