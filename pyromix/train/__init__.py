"""The SVI training loop: mini-batches, Adam, validation, early stopping, checkpoints, NaN guard.

:func:`fit` is a short loop (``pyromix.train.loop``) whose behaviour besides the steps is
made of :class:`Callback` s (``pyromix.train.callback``); a user adds their own with
``fit(..., callbacks=[...])``. The checkpoint format (``pyromix.train.checkpoint``), the
optimiser helpers (``pyromix.train.optim``), device resolution
(``pyromix.train.device``) and :func:`data_size` (``pyromix.train.walks``) live in
modules of their own.
"""

from .callback import Callback, Loop
from .checkpoint import CHECKPOINT_FORMAT, check_same_parameters, load_checkpoint, save_checkpoint
from .device import resolve_device
from .divergence import non_finite_values
from .fit import fit
from . import history as _history
from .history import EARLY_STOPPING, FitState, History, StepHook, TrainingDiverged
from .optim import MAX_LR, parameter_groups, unique_parameters
from .step import EVAL_BATCH_SIZE, evaluate_loss, training_step
from .walks import data_size

LossTerm = _history.LossTerm
"""An extra loss ``term(model, guide, batch) -> scalar tensor`` in nats summed over the batch,
added to the objective's loss by :func:`fit` (and to the validation loss) without editing the
model; e.g. the alpha-weighted classification term of a semi-supervised model."""

__all__ = [
    "History",
    "FitState",
    "LossTerm",
    "StepHook",
    "TrainingDiverged",
    "Callback",
    "Loop",
    "non_finite_values",
    "fit",
    "training_step",
    "evaluate_loss",
    "resolve_device",
    "unique_parameters",
    "check_same_parameters",
    "parameter_groups",
    "data_size",
    "save_checkpoint",
    "load_checkpoint",
    "CHECKPOINT_FORMAT",
    "MAX_LR",
    "EVAL_BATCH_SIZE",
    "EARLY_STOPPING",
]
