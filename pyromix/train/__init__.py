"""The SVI training loop: mini-batches, Adam, validation, early stopping, checkpoints, NaN guard.

:func:`fit` is a short loop (:mod:`~pyromix.train.loop`) whose behaviour besides the steps is
made of :class:`Callback` s (:mod:`~pyromix.train.callback`); a user adds their own with
``fit(..., callbacks=[...])``. The checkpoint format (:mod:`~pyromix.train.checkpoint`), the
optimiser helpers (:mod:`~pyromix.train.optim`), device resolution
(:mod:`~pyromix.train.device`) and :func:`data_size` (:mod:`~pyromix.train.walks`) live in
modules of their own.
"""

from .callback import Callback, Loop
from .checkpoint import CHECKPOINT_FORMAT, check_same_parameters, load_checkpoint, save_checkpoint
from .device import resolve_device
from .divergence import non_finite_values
from .fit import fit
from .history import EARLY_STOPPING, FitState, History, LossTerm, StepHook, TrainingDiverged
from .optim import MAX_LR, parameter_groups, unique_parameters
from .step import EVAL_BATCH_SIZE, evaluate_loss, training_step
from .walks import data_size

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
