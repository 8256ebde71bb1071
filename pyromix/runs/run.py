"""A run: a recipe's name and arguments with its networks, data and training history."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..data import Dataset
from ..train import History

__all__ = ["RUN_ARGS_KEYS", "RESUMABLE", "Run", "weights_epoch"]

#: What a saved run's arguments must hold for load_run, evaluation, reports and compare to rebuild
#: its data and score it; a recipe's build reads its own keys besides.
RUN_ARGS_KEYS = (
    "data",
    "data_dir",
    "split_seed",
    "limit",
    "binarize",
    "dataset",
    "likelihood",
    "seed",
    "data_dim",
    "image_shape",
)

# What a resumed run may change; every other argument given must match the recorded one.
RESUMABLE = ("epochs", "patience")


@dataclass
class Run:
    """A trained (or reloaded) recipe: its name, arguments, networks, data and history."""

    name: str
    args: dict[str, Any]
    model: nn.Module
    guide: nn.Module
    dataset: Dataset
    history: History
    hooks: list = field(default_factory=list)  # the recipe's step hooks, with their state
    restore_best: bool = True  # the weights are the best validation epoch's, not the last's
    restarts: list = field(default_factory=list)  # the starts' scores (pyromix.restarts)


def weights_epoch(run: Run) -> int:
    """The epoch (1-based) whose weights ``run`` holds: the best one, or the last for a recipe
    with ``restore_best=False``."""
    best = run.history.best_epoch
    return run.history.epochs if best is None or not run.restore_best else best + 1
