"""Checkpoints as a callback: the run's state written after the first and the last epoch and,
in between, once ``every`` seconds have passed (rank 0 writes; every rank gives its RNG)."""

from __future__ import annotations

import os
import time
from typing import Any

import torch

from ..distributed import Replicas
from .callback import Callback, Loop
from .checkpoint import save_checkpoint

__all__ = ["Checkpointing"]


class Checkpointing(Callback):
    """Write ``path`` (:func:`~pyromix.train.save_checkpoint`) at the end of the epochs due.

    Arguments:
        path: the checkpoint file.
        every: seconds between checkpoints; 0 writes one after every epoch.
        recipe: plain-data arguments stored with it, to rebuild model and guide.
        restore_best: whether the run ends with the best epoch's weights (recorded).
        replicas: the processes; generator: the batch order's generator (saved).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        every: float,
        recipe: dict[str, Any] | None,
        restore_best: bool,
        replicas: Replicas,
        generator: torch.Generator,
    ) -> None:
        self.path, self.every, self.recipe = path, every, recipe
        self.restore_best, self.replicas, self.generator = restore_best, replicas, generator
        self.saved_at = time.monotonic()

    def on_fit_start(self, loop: Loop) -> None:
        self.saved_at = time.monotonic()

    def on_epoch_end(self, loop: Loop) -> None:
        rng = self.replicas.gather_rng()  # every rank takes part; rank 0 writes
        last = bool(loop.history.stopped) or loop.epoch == loop.epochs - 1
        due = loop.epoch == loop.start or last or time.monotonic() - self.saved_at >= self.every
        if due and self.replicas.is_zero:
            state = {**loop.good, "torch_rng": rng, "generator": self.generator.get_state()}
            save_checkpoint(
                self.path,
                state=state,
                best=loop.best,
                history=loop.history,
                recipe=self.recipe,
                restore_best=self.restore_best,
            )
            self.saved_at = time.monotonic()
