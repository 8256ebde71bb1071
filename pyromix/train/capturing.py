"""Captured steps in :func:`~pyromix.train.fit`, as a callback: the step function the loop runs
(eager, or replayed graphs; :class:`pyromix.capture.StepCapture`), its record in the history,
and the eager re-run when a re-check finds replayed steps wrong."""

from __future__ import annotations

import os
from typing import Any, Sequence

from pyro.infer import ELBO
from torch import nn

from ..capture import StepCapture
from ..eager_rerun import EagerRerun
from ..infer.scale import LatentScaleMessenger
from .callback import Callback, Loop

__all__ = ["Capture"]


class Capture(Callback):
    """The steps of ``objective`` on the KL-weighted programs, captured after ``after`` steps
    of the same structure (None: every step eager); ``history.capture`` says how, each epoch.

    Made before the run's random state is seeded or resumed: :attr:`rerun` holds the state
    the call starts from, to run it again eagerly (:class:`pyromix.eager_rerun.EagerRerun`).
    """

    def __init__(
        self,
        objective: ELBO,
        weighting: LatentScaleMessenger,
        model: nn.Module,
        guide: nn.Module,
        parameters: list[nn.Parameter],
        *,
        after: int | None,
        strict: bool,
        hooks: Sequence[Any],
        checkpoint: str | os.PathLike | None,
    ) -> None:
        self.step = StepCapture(
            objective,
            weighting(model),
            weighting(guide),
            parameters=parameters,
            modules=(model, guide),
            state=(weighting,),
            after=after,
            strict=strict,
        )
        self.rerun = None if self.step.off else EagerRerun(model, guide, hooks, checkpoint)

    def on_epoch_end(self, loop: Loop) -> None:
        loop.history.capture = {
            "graphs": self.step.graphs,
            "seconds": round(self.step.seconds, 3),
            "off": self.step.off,
        }
