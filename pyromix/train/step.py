"""One training step of :func:`~pyromix.train.fit` and the validation loss between epochs."""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Sequence

import pyro
import torch
from pyro.infer import ELBO
from torch import nn

from ..capture import StepCapture
from ..data import Split, batches
from ..distributed import Replicas
from ..evaluate import eval_mode
from ..labels import Batch
from ..local_params import keeps_params_local
from .history import LossTerm
from .walks import walking

__all__ = ["training_step", "step_loss", "evaluate_loss", "validation_loss", "EVAL_BATCH_SIZE"]

EVAL_BATCH_SIZE = 1000


def training_step(
    objective: ELBO, model: Callable, guide: Callable, *args: Any, validate: bool, **kwargs: Any
) -> float:
    """``objective.loss_and_grads(model, guide, *args, **kwargs)``, Pyro's checks only if asked.

    Pyro checks every distribution's arguments and values and every module's parameters on
    each call; they change no number (loss, gradients and draws are the same either way) but
    cost 5-10 % of a small model's step. :func:`fit` checks the first step of a run, where a
    model's mistakes show, and trusts the structure it saw afterwards; non-finite values still
    stop training, through the loss.

    Arguments:
        objective: a Pyro ELBO.
        model, guide: Pyro programs.
        args, kwargs: their arguments (the batch).
        validate: leave Pyro's checks as they are globally (on by default); False turns them
            off for this call (``pyro.validation_enabled(False)``).

    Returns:
        The loss as a float; gradients are accumulated in the parameters' ``.grad``.

    Example:
        >>> loss = training_step(Trace_ELBO(), model, guide, x, validate=False)  # doctest: +SKIP
    """
    with contextlib.nullcontext() if validate else pyro.validation_enabled(False):
        return objective.loss_and_grads(model, guide, *args, **kwargs)


def step_loss(
    step: StepCapture,
    programs: tuple,
    batch: Batch,
    terms: Sequence[LossTerm],
    *,
    validate: bool,
) -> float:
    """Loss of one batch, its gradients accumulated: the objective's on the KL-weighted
    programs (checked, or as ``step`` runs it: eager or captured), then each extra term's on the
    programs themselves."""
    args, kwargs = batch.call()
    if validate:
        loss = training_step(step.objective, step.model, step.guide, *args, validate=True, **kwargs)
    else:
        loss = step(*args, **kwargs)
    for term in terms:
        value = term(*programs, batch)
        value.backward()
        loss += float(value.detach())
    return loss


@torch.no_grad()
@keeps_params_local
def evaluate_loss(
    model: nn.Module,
    guide: nn.Module,
    objective: ELBO,
    split: Split,
    loss_terms: Sequence[LossTerm] = (),
) -> float:
    """The full objective (KL weight 1, plus ``loss_terms``) per data point on ``split``,
    parameters untouched.

    Model and guide are called as :mod:`pyromix.labels` says, with the split's revealed labels.
    Networks run in eval mode (no dropout) and return to their previous mode after.
    """
    total = 0.0
    with eval_mode(model, guide), walking(len(split)) as walk:
        for batch in batches(split, EVAL_BATCH_SIZE, labeled=True):
            args, kwargs = batch.call()
            loss = objective.loss(model, guide, *args, **kwargs)
            loss += sum(float(term(model, guide, batch)) for term in loss_terms)
            total += loss * walk.weight(len(batch))
    return total / len(split)


def validation_loss(model, guide, objective, split, terms, replicas: Replicas) -> float:
    """:func:`evaluate_loss` of ``split``, each rank on its slice, summed over ranks."""
    shard = replicas.shard_split(split)
    total = evaluate_loss(model, guide, objective, shard, terms) * len(shard) if len(shard) else 0.0
    return replicas.sum(total) / len(split)
