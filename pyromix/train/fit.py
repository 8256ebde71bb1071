"""fit: train a model and guide by SVI, a short loop whose behaviour is made of callbacks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from pyro.infer import ELBO
from torch import nn

from ..capture import CAPTURE_AFTER, CaptureDisagreed
from ..data import Dataset
from ..distributed import Devices, Replicas
from ..infer.scale import LatentScaleMessenger
from ..infer.schedules import Weight, weight_at
from ..labels import check_accepts_labels
from ..local_params import keeps_params_local
from ..param_store_programs import as_modules
from ..rundir import check_output_file
from .callback import Callback, Loop, check_callbacks
from .capturing import Capture
from .checkpoint import resume as resume_from, snapshot
from .checkpointing import Checkpointing
from .device import replicas_for
from .history import History, LossTerm, StepHook
from .hooks import EpochSchedules, StepHooks
from .loop import Settings, run
from .optim import MAX_LR, build_optimizer, unique_parameters
from .progress import ProgressBar
from .stopping import EarlyStopping, reopen
from ..schema import Interval, check_value

__all__ = ["fit"]


@keeps_params_local
def fit(
    model: nn.Module,
    guide: nn.Module,
    data: Dataset,
    objective: ELBO,
    *,
    epochs: int = 100,
    batch_size: int = 100,
    lr: float = 1e-3,
    optimizer: Callable[[list[nn.Parameter]], torch.optim.Optimizer] | None = None,
    kl_weight: Weight = 1.0,
    schedules: Sequence[Callable[[int], Any]] = (),
    step_hooks: Sequence[StepHook] = (),
    loss_terms: Sequence[LossTerm] = (),
    patience: int | None = None,
    restore_best: bool = True,
    seed: int | None = 0,
    device: str | torch.device | Devices | Replicas = "cpu",
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    recipe: dict[str, Any] | None = None,
    progress: bool = True,
    validate_steps: bool = False,
    checkpoint_every: float = 0.0,
    capture_after: int | None = CAPTURE_AFTER,
    callbacks: Sequence[Callback] = (),
) -> History:
    """Train ``model`` and ``guide`` by stochastic variational inference.

    Each epoch runs one pass of shuffled mini-batches through ``objective.loss_and_grads`` and an
    optimiser step, then measures the full objective on the validation split without touching
    parameters. Any Pyro ELBO works (Trace_ELBO, TraceMeanField_ELBO, TraceEnum_ELBO, RenyiELBO,
    TraceGraph_ELBO, or one from :mod:`pyromix.infer`).

    With several processes (:class:`pyromix.distributed.Devices`), every process runs this loop
    on the same global batches: each takes its slice, gradients and losses are reduced over
    processes after every step (so each step is the one-process step of the whole batch, with
    other noise), the validation loss likewise, and only rank 0 writes the checkpoint and shows
    the progress bar. A step hook's updates are rank 0's, broadcast to the others.

    Arguments:
        model, guide: Pyro programs (``nn.Module``) called as ``model(x)``, or as
            ``model(x, y, y_mask=mask)`` when the data reveal labels (the convention of
            :mod:`pyromix.labels`; a program that cannot take them is refused before training).
            :func:`data_size` gives them the training-set size.
        data: a :class:`pyromix.data.Dataset`; its train split is batched (with dynamic
            binarisation if the dataset asks for it), its val split is validated on.
        objective: a Pyro ELBO instance.
        epochs: total number of epochs, counting those of a resumed run.
        batch_size: mini-batch size (the global batch, split over processes).
        lr: Adam learning rate (when ``optimizer`` is None).
        optimizer: factory ``parameters -> torch optimiser`` called once with every parameter of
            model and guide, each once; :func:`parameter_groups` gives per-module learning
            rates. Every parameter must reach it.
        kl_weight: a number or a schedule ``epoch -> weight`` scaling the latent sites of model
            and guide alike (:class:`pyromix.infer.KLWarmup` for warm-up, a constant for beta).
        schedules: callables ``schedule(epoch)`` run at the start of every epoch (std annealing).
        step_hooks: :class:`StepHook` s called with the :class:`FitState` after every optimiser
            step (the discriminator steps of the implicit prior, per-step schedules); restored
            with the run on a NaN or on resume.
        loss_terms: extra :data:`~pyromix.train.LossTerm` s added to the loss of every step and to the
            validation loss, unweighted by ``kl_weight``.
        patience: stop after this many epochs without a better validation loss (counted once
            the KL weight has settled); ``None`` trains all epochs. A run resumed with a
            patience that lets it wait longer than the one that stopped it continues, as a
            fresh run with that patience would have; otherwise it stays stopped.
        restore_best: end with the weights of the best validation epoch.
        seed: seeds Pyro/torch and the batch order; ``None`` leaves the RNGs alone.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; or a :class:`~pyromix.distributed.Devices`
            (accelerator, devices, strategy, nodes, precision) or its started
            :class:`~pyromix.distributed.Replicas`. Modules and data are moved there.
        checkpoint: file written atomically (model, guide, optimiser, epoch, history, RNG state
            of every process, best weights, and ``recipe``) after the first and the last epoch
            and, in between, after every epoch that ends ``checkpoint_every`` seconds or more
            after the last write; rank 0 writes it.
        resume: continue from ``checkpoint`` if it exists.
        recipe: plain-data arguments stored in the checkpoint to rebuild model and guide.
        progress: show a tqdm progress bar (rank 0).
        validate_steps: run Pyro's argument and structure checks on every step; by default
            only the first step of the call is checked (see :func:`training_step`), and steps
            are captured.
        checkpoint_every: seconds between checkpoints; 0 writes one after every epoch. A run
            killed in between resumes from the last one written, exactly as from any epoch.
        capture_after: run a step's recorded tensor operations instead of the Pyro programs once
            their structure (shapes, settings, schedule values) has been the same for this many
            steps; each graph is first checked against an eager step on the same draws
            (:class:`pyromix.capture.StepCapture`; the numbers do not change), and again every
            :data:`~pyromix.capture.RECHECK_EVERY` replays; if a re-check disagrees, the call is
            run again from its start with every step eager (in one process; with several, the
            steps from there on are eager). ``None`` keeps every step eager, for programs that
            branch on data values.
        callbacks: :class:`Callback` s whose events (``on_fit_start``, ``on_epoch_start``,
            ``on_step_end``, ``on_epoch_end``, ``on_fit_end``) receive the :class:`Loop`; they
            run after fit's own and before the checkpoint is written, and one can stop training
            (:meth:`Loop.stop`). A call run again eagerly after a failed re-check raises its
            events again, from ``on_fit_start``.

    Returns:
        The :class:`History`.

    Raises:
        TrainingDiverged: on a NaN or infinite loss or gradient, or a validation loss
            ``DIVERGENCE_FACTOR`` (1e6) times worse than the loss before this call's first update
            (finite, yet weights that have blown up), after restoring the state at the start of
            the epoch (and leaving the last checkpoint as it was). Pyro's "Encountered NaN"
            warnings are silenced meanwhile: this says it in one line.

    Example:
        >>> data = load_dataset("digits", binarize="dynamic")  # doctest: +SKIP
        >>> history = fit(model, guide, data, Trace_ELBO(), epochs=5)  # doctest: +SKIP
        >>> fast_prior = lambda ps: torch.optim.Adam(
        ...     parameter_groups(ps, {model.prior: {"lr": 1e-2}}), lr=1e-3)  # doctest: +SKIP
        >>> history = fit(model, guide, data, Trace_ELBO(), optimizer=fast_prior)  # doctest: +SKIP
    """
    arguments = dict(locals())  # this call's, to run it again eagerly (EagerRerun)
    if epochs < 1 or batch_size < 1 or not 0 < lr <= MAX_LR:
        raise ValueError(
            f"expected epochs >= 1, batch_size >= 1 and 0 < lr <= {MAX_LR:.3g}; got "
            f"epochs={epochs}, batch_size={batch_size}, lr={lr}"
        )
    check_value("patience", patience, Interval(int, 1), None)
    if resume and checkpoint is None:
        raise ValueError("resume=True needs the checkpoint path to resume from")
    callbacks = check_callbacks(callbacks)
    if checkpoint is not None:
        check_output_file(checkpoint, "checkpoint")
    if any(split.labeled is not None for split in (data.train, data.val)):
        check_accepts_labels(model=model, guide=guide)
    replicas = replicas_for(device)
    if batch_size < replicas.world_size:
        raise ValueError(
            f"batch_size: expected at least one point per process ({replicas.world_size}), "
            f"got {batch_size}"
        )
    data = data.to(replicas.device)
    model, guide = as_modules(objective, model, guide, data, batch_size)
    model.to(replicas.device), guide.to(replicas.device)
    parameters = unique_parameters(model, guide)
    optimizer = build_optimizer(optimizer, parameters, lr, model, guide)
    weighting = LatentScaleMessenger(weight_at(kl_weight, 0))
    capture = Capture(
        objective,
        weighting,
        model,
        guide,
        parameters,
        after=None if validate_steps else capture_after,
        strict=replicas.world_size == 1,
        hooks=step_hooks,
        checkpoint=checkpoint,
    )
    generator = torch.Generator()
    if seed is not None:
        replicas.seed(seed)
        generator.manual_seed(seed)  # the same batch order on every rank
    history, best = History(), None
    if resume and Path(checkpoint).exists():
        history, best = resume_from(
            checkpoint, model, guide, optimizer, step_hooks, replicas, generator
        )
        reopen(history, patience)
    start = history.epochs
    end = start if history.stopped else epochs  # a stopped run stays stopped
    # One copy per epoch: the state at the end of the last epoch is this epoch's fallback on a
    # non-finite loss, the checkpoint's state and, when validation improved, the best weights.
    model.train(), guide.train()
    good = snapshot(model, guide, optimizer, step_hooks)
    loop = Loop(model, guide, optimizer, data, history, epochs, start, good, best)
    own = [
        EpochSchedules(weighting, kl_weight, schedules),
        StepHooks(step_hooks, replicas),
        capture,
        *([] if patience is None else [EarlyStopping(patience, kl_weight, epochs)]),
        ProgressBar(progress and replicas.is_zero, end),
    ]
    saving = [] if checkpoint is None else [
        Checkpointing(checkpoint, checkpoint_every, recipe, restore_best, replicas, generator)
    ]
    settings = Settings(
        objective=objective,
        step=capture.step,
        replicas=replicas,
        weighting=weighting,
        hooks=step_hooks,
        parameters=parameters,
        loss_terms=loss_terms,
        batch_size=batch_size,
        generator=generator,
        validate_steps=validate_steps,
        end=end,
        restore_best=restore_best,
    )
    try:
        return run(loop, [*own, *callbacks, *saving], settings)
    except CaptureDisagreed as error:
        return capture.rerun.run(fit, arguments, str(error))
