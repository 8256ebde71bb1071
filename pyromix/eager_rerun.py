"""Running a :func:`pyromix.train.fit` call again, eagerly, when its captured steps were wrong.

A re-check that finds a replayed graph disagreeing with the eager step (a program that branches
on data values, on a branch the earlier checks did not meet) cannot say which of the steps
replayed since the last check were wrong. So ``fit`` puts back what it changed (the programs'
and step hooks' states, the random state, the checkpoint file) and runs the call again with
every step eager: the result is the eager run's, at the cost of the steps taken so far.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import pyro.util
import torch
from torch import nn

__all__ = ["EagerRerun"]


class EagerRerun:
    """The state a ``fit`` call starts from, to run it again eagerly.

    Arguments:
        model, guide: the programs' modules.
        hooks: the step hooks (with ``state_dict`` / ``load_state_dict``).
        checkpoint: the checkpoint file the call writes, if any.
    """

    def __init__(
        self,
        model: nn.Module,
        guide: nn.Module,
        hooks: Sequence[Any],
        checkpoint: str | os.PathLike | None,
    ) -> None:
        self.programs, self.hooks = (model, guide), list(hooks)
        self.states = copy.deepcopy(
            [model.state_dict(), guide.state_dict(), *(hook.state_dict() for hook in hooks)]
        )
        self.rng = pyro.util.get_rng_state()
        self.cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
        self.checkpoint = None if checkpoint is None else Path(checkpoint)
        exists = self.checkpoint is not None and self.checkpoint.exists()
        self.saved = self.checkpoint.read_bytes() if exists else None

    def restore(self) -> None:
        """Put back the programs, hooks, random state and checkpoint file as they were."""
        for owner, state in zip((*self.programs, *self.hooks), self.states):
            owner.load_state_dict(state)
        pyro.util.set_rng_state(self.rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state_all(self.cuda_rng)
        if self.checkpoint is not None:
            if self.saved is None:
                self.checkpoint.unlink(missing_ok=True)
            else:
                self.checkpoint.write_bytes(self.saved)

    def run(self, fit: Callable, arguments: dict[str, Any], reason: str) -> Any:
        """``fit(**arguments)`` from the restored state with every step eager; its history's
        ``capture`` says why."""
        self.restore()
        history = fit(**{**arguments, "capture_after": None})
        history.capture = {**history.capture, "off": f"{reason}; the run was redone eagerly"}
        return history
