"""Early stopping, as a callback: stop once the validation loss has not improved for
``patience`` epochs, counted from when the KL weight has settled."""

from __future__ import annotations

from ..infer.schedules import Weight, weight_at
from .callback import Callback, Loop
from .history import EARLY_STOPPING, History

__all__ = ["EarlyStopping", "reopen"]


class EarlyStopping(Callback):
    """Stop after ``patience`` epochs without a better validation loss than the best
    (``history.best_epoch``), once the KL weight has reached its final value."""

    def __init__(self, patience: int, kl_weight: Weight, epochs: int) -> None:
        self.patience, self.kl_weight, self.epochs = patience, kl_weight, epochs

    def on_epoch_end(self, loop: Loop) -> None:
        waited = loop.epoch - loop.history.best_epoch
        if _settled(self.kl_weight, loop.epoch, self.epochs) and waited >= self.patience:
            loop.stop(f"{EARLY_STOPPING}: no validation improvement for {waited} epochs")


def reopen(history: History, patience: int | None) -> None:
    """Reopen a run that early stopping ended if the (new) patience lets it wait longer: a
    resumed run then trains as a fresh run with that patience would have."""
    if history.stopped.startswith(EARLY_STOPPING) and history.best_epoch is not None:
        waited = history.epochs - 1 - history.best_epoch
        if patience is None or waited < patience:
            history.stopped = ""


def _settled(kl_weight: Weight, epoch: int, epochs: int) -> bool:
    # Early stopping compares validation losses only once the KL weight has reached its final
    # value: during warm-up the optimised objective changes from epoch to epoch.
    return weight_at(kl_weight, epoch) == weight_at(kl_weight, epochs - 1)
