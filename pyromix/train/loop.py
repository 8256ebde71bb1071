"""The epoch loop of :func:`~pyromix.train.fit`: steps, validation, the divergence guard, the
best weights, and the callbacks' events around them."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from pyro.infer import ELBO
from torch import nn

from ..capture import CaptureDisagreed, StepCapture
from ..distributed import Replicas
from ..infer.scale import LatentScaleMessenger
from . import step as steps
from .callback import Loop, dispatch
from .checkpoint import restore, snapshot
from .divergence import (
    BLOWN_UP,
    NAN_PARAMETERS,
    blown_up,
    diverged,
    no_nan_warnings,
    non_finite_values,
    untrained_hint,
)
from .history import History, LossTerm
from .walks import walking

__all__ = ["Settings", "run"]


@dataclass
class Settings:
    """What the loop needs besides the :class:`Loop` state: fixed for the call."""

    objective: ELBO
    step: StepCapture
    replicas: Replicas
    weighting: LatentScaleMessenger
    hooks: Sequence[Any]  # step hooks, whose state is part of every snapshot
    parameters: list[nn.Parameter]
    loss_terms: Sequence[LossTerm]
    batch_size: int
    generator: torch.Generator
    validate_steps: bool
    end: int
    restore_best: bool


def run(loop: Loop, callbacks: Sequence[Any], settings: Settings) -> History:
    """Train epochs ``loop.start`` to ``settings.end``, raising the callbacks' events."""
    try:
        dispatch(callbacks, "on_fit_start", loop)
        initial = None  # the loss per point before this call's first update
        # One walk for the whole call: whether the model asks for data_size is learnt on eager
        # steps and holds for captured ones, which do not run the model's Python.
        with walking(len(loop.data.train)) as walk, no_nan_warnings():
            for epoch in range(loop.start, settings.end):
                loop.epoch, started = epoch, time.perf_counter()
                dispatch(callbacks, "on_epoch_start", loop)
                total, first_loss = _train_epoch(loop, callbacks, settings, walk)
                if first_loss is not None:
                    initial = first_loss
                val = _validate(loop, settings, initial)
                history = loop.history
                history.train_loss.append(total / len(loop.data.train))
                history.val_loss.append(val)
                history.kl_weight.append(settings.weighting.weight)
                history.seconds.append(time.perf_counter() - started)
                loop.good = snapshot(loop.model, loop.guide, loop.optimizer, settings.hooks)
                if history.best_epoch is None or val < history.val_loss[history.best_epoch]:
                    history.best_epoch = epoch
                    loop.best = {"model": loop.good["model"], "guide": loop.good["guide"]}
                dispatch(callbacks, "on_epoch_end", loop)
                if history.stopped:
                    break
    finally:
        dispatch(callbacks, "on_fit_end", loop)
    if settings.restore_best and loop.best is not None:
        restore(loop.best, loop.model, loop.guide)
    return loop.history


def _train_epoch(loop: Loop, callbacks, settings: Settings, walk) -> tuple[float, float | None]:
    """One pass over the shuffled training batches: the summed loss, and the loss per point
    before any update when this epoch holds the call's first step (else None)."""
    model, guide, optimizer, replicas = loop.model, loop.guide, loop.optimizer, settings.replicas
    total, initial = 0.0, None
    batches = loop.data.train_batches(settings.batch_size, settings.generator, labeled=True)
    for step, batch in enumerate(batches):
        first = step == 0 and loop.epoch == loop.start  # no update yet: only data can be at fault
        optimizer.zero_grad(set_to_none=True)
        shard = replicas.shard(batch)
        try:
            with replicas.autocast():
                loss = steps.step_loss(
                    settings.step,
                    (model, guide),
                    shard,
                    settings.loss_terms,
                    validate=settings.validate_steps or first,
                )
        except CaptureDisagreed:
            raise
        except Exception as error:
            # A finite loss can have NaN gradients (a density whose scale collapsed): the
            # optimiser step writes them into the weights, and this step then fails, typically
            # in a distribution's argument check. Checking every gradient instead costs ~10 %.
            finite = all(torch.isfinite(p).all() for p in settings.parameters)
            if finite and not non_finite_values(error):
                raise
            what = "values in the model" if finite else NAN_PARAMETERS
            raise _stopped(loop, settings, what, step, first) from error
        # A model that asked for data_size returns an estimate of the whole objective on every
        # rank: those average; plain losses are sums over points: those add up.
        loss = replicas.reduce_gradients(settings.parameters, loss, mean=walk.asked)
        if not math.isfinite(loss):
            # Unchecked steps run NaN weights (written by the last step from a NaN gradient) to
            # a NaN loss, where a checked one fails in an argument check.
            finite = all(torch.isfinite(p).all() for p in settings.parameters)
            what = f"training loss ({loss})" if finite else NAN_PARAMETERS
            raise _stopped(loop, settings, what, step, first)
        if first:
            initial = loss * walk.weight(len(batch)) / len(batch)
        optimizer.step()
        loop.step, loop.batch, loop.loss = step, shard, loss
        dispatch(callbacks, "on_step_end", loop)
        total += loss * walk.weight(len(batch))
    return total, initial


def _stopped(loop: Loop, settings: Settings, what: str, step: int, first: bool):
    """The divergence error of a step, after putting back the last good state."""
    restore(loop.good, loop.model, loop.guide, loop.optimizer, settings.hooks)
    hint = untrained_hint(loop.data, settings.weighting.weight) if first else ""
    return diverged(what, loop.epoch, loop.history, step, hint)


def _validate(loop: Loop, settings: Settings, initial: float | None) -> float:
    """The validation loss, refused (after putting back the last good state) when not finite
    or blown up."""
    replicas = settings.replicas
    try:
        with replicas.autocast():
            val = steps.validation_loss(
                loop.model, loop.guide, settings.objective, loop.data.val, settings.loss_terms,
                replicas,
            )
    except ValueError as error:
        if not non_finite_values(error):
            raise
        val = math.nan
    if not math.isfinite(val):
        restore(loop.good, loop.model, loop.guide, loop.optimizer, settings.hooks)
        raise diverged(f"validation loss ({val})", loop.epoch, loop.history)
    if blown_up(val, initial):
        restore(loop.good, loop.model, loop.guide, loop.optimizer, settings.hooks)
        what = f"{BLOWN_UP} {val:.3g} nats per point (before training: {initial:.3g})"
        raise diverged(what, loop.epoch, loop.history)
    return val
