"""The SVI training loop: mini-batches, Adam, validation, early stopping, checkpoints, NaN guard."""

from __future__ import annotations

import contextlib
import copy
import inspect
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Protocol, Sequence

import pyro
import torch
from pyro.infer import ELBO
from torch import nn
from tqdm.auto import tqdm

from .capture import CAPTURE_AFTER, CaptureDisagreed, StepCapture
from .data import Dataset, Split, batches
from .distributed import Devices, Replicas
from .eager_rerun import EagerRerun
from .local_params import keeps_params_local
from .param_store_programs import as_modules
from .rundir import check_output_file, write_atomically
from .evaluate import eval_mode
from .labels import Batch, check_accepts_labels
from .infer.scale import LatentScaleMessenger
from .infer.schedules import Weight, weight_at

__all__ = [
    "History",
    "FitState",
    "LossTerm",
    "StepHook",
    "TrainingDiverged",
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
]

CHECKPOINT_FORMAT = "pyromix-checkpoint-1"
# Adam multiplies float32 tensors by the learning rate: a larger one is not a float32 number.
MAX_LR = float(torch.finfo(torch.float32).max)
EVAL_BATCH_SIZE = 1000
EARLY_STOPPING = "early stopping"  # how History.stopped begins when patience ran out


@dataclass
class History:
    """Per-epoch record of a run; losses are negative objectives in nats per data point.

    ``train_loss`` is the weighted objective actually optimised (KL weight ``kl_weight``);
    ``val_loss`` is the full objective (weight 1) on the validation split. ``best_epoch`` indexes
    the lowest ``val_loss``; ``stopped`` says why training ended before ``epochs`` ("" if not).
    ``capture`` reports the captured steps of the last :func:`fit` call (:mod:`pyromix.capture`):
    ``graphs`` captured, ``seconds`` spent capturing and checking them, and ``off``, why capture
    stopped ("" if it did not; ending in "the run was redone eagerly" when a re-check found
    replayed steps wrong and the call ran again eagerly).
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    kl_weight: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stopped: str = ""
    capture: dict[str, Any] = field(default_factory=dict)

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "History":
        return cls(**d)


@dataclass
class FitState:
    """What :func:`fit` passes to every step hook after an optimiser step.

    Attributes:
        epoch: 0-based epoch.
        step: 0-based step within the epoch.
        batch: the :class:`pyromix.labels.Batch` just trained on (as the model saw it).
        loss: the step's loss (objective plus extra terms), in nats.
        num_data: N, the training-set size.
        model, guide: the programs being trained.
        optimizer: the optimiser (to change learning rates per step, for example).
    """

    epoch: int
    step: int
    batch: Batch
    loss: float
    num_data: int
    model: nn.Module
    guide: nn.Module
    optimizer: torch.optim.Optimizer


class StepHook(Protocol):
    """Called by :func:`fit` after every optimiser step, with its state in the checkpoint.

    For training that interleaves other updates with the SVI steps, such as the discriminator
    steps of the implicit prior (:class:`pyromix.infer.DensityRatioSteps`), or per-step
    schedules. ``__call__`` receives the :class:`FitState` (a hook taking no argument is called
    without it).
    """

    def __call__(self, state: FitState) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


LossTerm = Callable[[nn.Module, nn.Module, Batch], torch.Tensor]
"""An extra loss ``term(model, guide, batch) -> scalar tensor`` in nats summed over the batch,
added to the objective's loss by :func:`fit` (and to the validation loss) without editing the
model; e.g. the alpha-weighted classification term of a semi-supervised model."""


class _Walk:
    """The split a loop walks through, and whether the model asked for its size."""

    def __init__(self, size: int) -> None:
        self.size, self.asked = size, False

    def weight(self, batch_size: int) -> float:
        # A model that scales its data plate by N / B (data_size) returns a loss estimating the
        # whole split's objective; its share of the split's per-point loss is B / N of it.
        return batch_size / self.size if self.asked else 1.0


_walks: list[_Walk] = []


@contextlib.contextmanager
def _walking(size: int) -> Iterator[_Walk]:
    _walks.append(_Walk(size))
    try:
        yield _walks[-1]
    finally:
        _walks.pop()


def data_size(x: torch.Tensor) -> int:
    """N, the size of the data set that the batch ``x`` was drawn from.

    The training-set size during :func:`fit`'s steps, the validation split's size during
    validation, and ``len(x)`` elsewhere (importance-sampled evaluation weighs each point on its
    own). It is what a model with a global latent site needs for Pyro's subsampling scale, and
    :class:`History` then reports losses per data point all the same.

    Arguments:
        x: the batch the model was called with.

    Returns:
        An integer N >= len(x).

    Example:
        >>> def model(x, y=None):
        ...     w = pyro.sample("w", pyro.distributions.Normal(0.0, 1.0))  # global: once per N
        ...     with pyro.plate("data", data_size(x), subsample=x):
        ...         pyro.sample("x", pyro.distributions.Normal(w, 1.0).to_event(1), obs=x)
        >>> data_size(torch.zeros(3, 2))
        3
    """
    if not _walks:
        return x.shape[0]
    _walks[-1].asked = True
    return _walks[-1].size


class TrainingDiverged(RuntimeError):
    """A non-finite loss or gradient stopped training; the model holds the last good state.

    Attributes:
        history: the history up to the last completed epoch.
    """

    def __init__(self, message: str, history: History) -> None:
        super().__init__(message)
        self.history = history


def resolve_device(device: str | torch.device) -> torch.device:
    """``"cpu"``, ``"cuda"`` or ``"cuda:N"``, refusing CUDA when it is not available."""
    try:
        device = torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"device: expected 'cpu' or 'cuda[:N]', got {device!r}") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: 'cuda' was requested but torch.cuda.is_available() is False")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device: expected 'cpu' or 'cuda[:N]', got {str(device)!r}")
    return device


def parameter_groups(
    parameters: Sequence[nn.Parameter], options: Mapping[nn.Module, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Optimiser parameter groups: one per module of ``options`` with its settings, one for the
    rest, for per-module learning rates through :func:`fit`'s ``optimizer`` factory.

    Arguments:
        parameters: the parameters to group (fit passes every trainable one, each once).
        options: module -> optimiser options for its parameters (``{"lr": 1e-2}``); a parameter
            belongs to the first module listed that holds it.

    Returns:
        Groups for a torch optimiser; the last holds the remaining parameters (default options).

    Example:
        >>> prior, decoder = torch.nn.Linear(2, 2), torch.nn.Linear(2, 3)
        >>> params = unique_parameters(prior, decoder)
        >>> groups = parameter_groups(params, {prior: {"lr": 1e-2}})
        >>> [(len(g["params"]), g.get("lr")) for g in groups]
        [(2, 0.01), (2, None)]
    """
    owner: dict[int, int] = {}
    for index, module in enumerate(options):
        for p in module.parameters():
            owner.setdefault(id(p), index)
    groups = [{**opts, "params": []} for opts in options.values()] + [{"params": []}]
    for p in parameters:
        groups[owner.get(id(p), len(options))]["params"].append(p)
    return [g for g in groups if g["params"]]


def unique_parameters(*modules: nn.Module) -> list[nn.Parameter]:
    """The parameters of ``modules``, each once, in order.

    A guide may share networks with its model (the VampPrior uses the guide's encoder): each
    parameter must reach an optimiser once.
    """
    unique: dict[int, nn.Parameter] = {}
    for module in modules:
        for p in module.parameters():
            unique.setdefault(id(p), p)
    return list(unique.values())


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
    with eval_mode(model, guide), _walking(len(split)) as walk:
        for batch in batches(split, EVAL_BATCH_SIZE, labeled=True):
            args, kwargs = batch.call()
            loss = objective.loss(model, guide, *args, **kwargs)
            loss += sum(float(term(model, guide, batch)) for term in loss_terms)
            total += loss * walk.weight(len(batch))
    return total / len(split)


def _snapshot(model, guide, optimizer, hooks) -> dict[str, Any]:
    return _copied(
        {
            "model": model.state_dict(),
            "guide": guide.state_dict(),
            "optimizer": optimizer.state_dict(),
            "hooks": [hook.state_dict() for hook in hooks],
        }
    )


def _copied(value: Any) -> Any:
    """A deep copy of nested dicts, lists and tuples of tensors and plain values.

    What ``copy.deepcopy`` makes, at a fraction of its cost: its memo and the attributes it
    copies per tensor took as long as the optimiser steps of a digits epoch.
    """
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_copied(item) for item in value)
    return copy.deepcopy(value)


def check_same_parameters(
    program: nn.Module, saved: dict[str, Any], checkpoint: str | os.PathLike, what: str
) -> None:
    """Refuse weights saved by another version of a program, naming the parameters that differ
    (torch's own message stops at "Error(s) in loading state_dict").

    Raises:
        ValueError: naming ``checkpoint``, ``what`` was saved, and each differing parameter.
    """
    now = program.state_dict()
    gone, new = sorted(saved.keys() - now.keys()), sorted(now.keys() - saved.keys())
    reshaped = [
        f"{k} (saved {tuple(saved[k].shape)}, now {tuple(now[k].shape)})"
        for k in sorted(saved.keys() & now.keys())
        if hasattr(saved[k], "shape") and saved[k].shape != now[k].shape
    ]
    parts = [f"{label}: {', '.join(names)}" for label, names in (
        ("saved but no longer built", gone), ("built but not saved", new), ("of another shape", reshaped)
    ) if names]
    if parts:
        raise ValueError(
            f"checkpoint: {str(checkpoint)!r} was saved by another version of {what} "
            f"({'; '.join(parts)}); restore the recipe as it was, or train a new run"
        )


def _restore(snapshot, model, guide, optimizer=None, hooks=()) -> None:
    model.load_state_dict(snapshot["model"])
    guide.load_state_dict(snapshot["guide"])
    if optimizer is not None:
        optimizer.load_state_dict(snapshot["optimizer"])
    for hook, state in zip(hooks, snapshot.get("hooks", [])):
        hook.load_state_dict(state)


def _diverged(
    what: str, epoch: int, history: History, step: int | None = None, hint: str = ""
) -> TrainingDiverged:
    """Training stopped at ``epoch`` (0-based; ``step`` too, None for validation) on ``what``
    (non-finite values unless it says otherwise)."""
    where = f"epoch {epoch + 1}" + ("" if step is None else f", step {step + 1}")
    kept = f"the end of epoch {epoch}" if epoch else "their initial values"
    what = what if what.startswith(_BLOWN_UP) else f"non-finite {what}"
    return TrainingDiverged(
        f"{what} at {where}; parameters restored to {kept} ({hint or 'try a lower learning rate'})",
        history,
    )


def non_finite_values(error: Exception) -> bool:
    """Whether ``error`` is a distribution's argument check failing on NaN or infinite values.

    Example:
        >>> import torch
        >>> try:
        ...     torch.distributions.Normal(torch.tensor(float("nan")), 1.0)
        ... except ValueError as error:
        ...     non_finite_values(error)
        True

    With finite parameters this still means divergence: weights grown large overflow the
    activations to inf (a learning rate of 1e6), or the data does (values of 1e30).
    """
    return isinstance(error, ValueError) and "but found invalid values" in str(error)


# Data beyond this magnitude is blamed when the first step, before any update, is not finite.
LARGE_DATA = 1e4
#: A validation loss this many times worse than the loss before training means divergence,
#: though finite (weights grown so large that a likelihood gives its points ~exp(-1e30)).
DIVERGENCE_FACTOR = 1e6


def _untrained_hint(data: Dataset, kl_weight: float) -> str:
    """Why a run fails on its first step, before any update: the scale of its data, a KL weight
    that overflows, or else the model on this data."""
    largest = float(data.train.x.abs().max())
    if largest > LARGE_DATA:
        return f"before any update: the data reaches |x| = {largest:.3g}; standardise it"
    if kl_weight > 1:
        return (
            f"before any update: the objective overflows at a KL weight of {kl_weight:.3g}; "
            "lower --beta"
        )
    return (
        f"before any update: the initial model gives non-finite values on data within |x| <= "
        f"{largest:.3g}; standardise the data or check the model"
    )


def _blown_up(val: float, initial: float | None) -> bool:
    """Whether a finite validation loss is ``DIVERGENCE_FACTOR`` (1e6) times worse than the
    loss per point before training (``initial``), with 1 nat as the least scale."""
    return initial is not None and val > initial + DIVERGENCE_FACTOR * max(1.0, abs(initial))


def _resume_stop(history: History, patience: int | None) -> None:
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
        loss_terms: extra :data:`LossTerm` s added to the loss of every step and to the
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
    if patience is not None and patience < 1:
        raise ValueError(f"patience: expected an integer >= 1 or None, got {patience}")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs the checkpoint path to resume from")
    if checkpoint is not None:
        check_output_file(checkpoint, "checkpoint")
    if any(split.labeled is not None for split in (data.train, data.val)):
        check_accepts_labels(model=model, guide=guide)
    replicas = _replicas(device)
    if batch_size < replicas.world_size:
        raise ValueError(
            f"batch_size: expected at least one point per process ({replicas.world_size}), "
            f"got {batch_size}"
        )
    data = data.to(replicas.device)
    model, guide = as_modules(objective, model, guide, data, batch_size)
    model.to(replicas.device), guide.to(replicas.device)
    parameters = unique_parameters(model, guide)
    optimizer = _build_optimizer(optimizer, parameters, lr, model, guide)
    hooks = [_with_state(hook) for hook in step_hooks]
    weighting = LatentScaleMessenger(weight_at(kl_weight, 0))
    train_model, train_guide = weighting(model), weighting(guide)
    capturing = StepCapture(
        objective,
        train_model,
        train_guide,
        parameters=parameters,
        modules=(model, guide),
        state=(weighting,),
        after=None if validate_steps else capture_after,
        strict=replicas.world_size == 1,
    )
    rerun = None if capturing.off else EagerRerun(model, guide, step_hooks, checkpoint)
    generator = torch.Generator()
    if seed is not None:
        replicas.seed(seed)
        generator.manual_seed(seed)  # the same batch order on every rank

    history, best = History(), None
    if resume and Path(checkpoint).exists():
        saved = load_checkpoint(checkpoint)
        for role, program in (("model", model), ("guide", guide)):
            check_same_parameters(program, saved["state"][role], checkpoint, f"the {role}")
        try:
            _restore(saved["state"], model, guide, optimizer, step_hooks)
        except (KeyError, TypeError, RuntimeError, ValueError) as e:
            text = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise ValueError(
                f"checkpoint: {str(checkpoint)!r} does not fit the model being trained "
                f"({type(e).__name__}: {text})"
            ) from e
        history, best = History.from_dict(saved["history"]), saved["best"]
        _resume_stop(history, patience)
        rng = saved["state"]["torch_rng"]
        replicas.set_rng(rng if isinstance(rng, list) else [rng])
        generator.set_state(saved["state"]["generator"])

    model.train(), guide.train()
    # One deep copy per epoch: the state at the end of the last epoch is this epoch's fallback on
    # a non-finite loss, the checkpoint's state and, when validation improved, the best weights.
    good = _snapshot(model, guide, optimizer, step_hooks)
    start, saved_at = history.epochs, time.monotonic()
    quiet = not progress or not replicas.is_zero
    end = start if history.stopped else epochs  # a stopped run stays stopped
    bar = tqdm(range(start, end), desc="fit", unit="epoch", disable=quiet)
    initial = None  # the loss per point before this call's first update
    hook_parameters = [p for hook in step_hooks for p in getattr(hook, "parameters", list)()]
    # One walk for the whole call: whether the model asks for data_size is learnt on eager
    # steps and holds for captured ones, which do not run the model's Python.
    with _walking(len(data.train)) as walk, _no_nan_warnings():
        for epoch in bar:
            started = time.perf_counter()
            weighting.weight = weight_at(kl_weight, epoch)
            for schedule in schedules:
                schedule(epoch)
            total = 0.0
            for step, batch in enumerate(data.train_batches(batch_size, generator, labeled=True)):
                first = step == 0 and epoch == start  # no update yet: only data can be at fault
                optimizer.zero_grad(set_to_none=True)
                shard = replicas.shard(batch)
                try:
                    with replicas.autocast():
                        loss = _step_loss(
                            capturing,
                            (model, guide),
                            shard,
                            loss_terms,
                            validate=validate_steps or first,
                        )
                except CaptureDisagreed as error:
                    bar.close()
                    return rerun.run(fit, arguments, str(error))
                except Exception as error:
                    # A finite loss can have NaN gradients (a density whose scale collapsed):
                    # the optimiser step writes them into the weights, and this step then fails,
                    # typically in a distribution's argument check. Checking every gradient
                    # instead costs ~10 %.
                    finite = all(torch.isfinite(p).all() for p in parameters)
                    if finite and not non_finite_values(error):
                        raise
                    _restore(good, model, guide, optimizer, step_hooks)
                    what = "values in the model" if finite else _NAN_PARAMETERS
                    hint = _untrained_hint(data, weighting.weight) if first else ""
                    raise _diverged(what, epoch, history, step, hint) from error
                # A model that asked for data_size returns an estimate of the whole objective on
                # every rank: those average; plain losses are sums over points: those add up.
                loss = replicas.reduce_gradients(parameters, loss, mean=walk.asked)
                if not math.isfinite(loss):
                    # Unchecked steps run NaN weights (written by the last step from a NaN
                    # gradient) to a NaN loss, where a checked one fails in an argument check.
                    finite = all(torch.isfinite(p).all() for p in parameters)
                    what = f"training loss ({loss})" if finite else _NAN_PARAMETERS
                    _restore(good, model, guide, optimizer, step_hooks)
                    hint = _untrained_hint(data, weighting.weight) if first else ""
                    raise _diverged(what, epoch, history, step, hint)
                if first:
                    initial = loss * walk.weight(len(batch)) / len(batch)
                optimizer.step()
                now = FitState(epoch, step, shard, loss, len(data.train), model, guide, optimizer)
                for hook in hooks:
                    hook(now)
                replicas.broadcast(hook_parameters)
                total += loss * walk.weight(len(batch))
            try:
                with replicas.autocast():
                    val = _validation_loss(model, guide, objective, data.val, loss_terms, replicas)
            except ValueError as error:
                if not non_finite_values(error):
                    raise
                val = math.nan
            if not math.isfinite(val):
                _restore(good, model, guide, optimizer, step_hooks)
                raise _diverged(f"validation loss ({val})", epoch, history)
            if _blown_up(val, initial):
                _restore(good, model, guide, optimizer, step_hooks)
                what = f"{_BLOWN_UP} {val:.3g} nats per point (before training: {initial:.3g})"
                raise _diverged(what, epoch, history)
            history.train_loss.append(total / len(data.train))
            history.val_loss.append(val)
            history.kl_weight.append(weighting.weight)
            history.seconds.append(time.perf_counter() - started)
            history.capture = {
                "graphs": capturing.graphs,
                "seconds": round(capturing.seconds, 3),
                "off": capturing.off,
            }
            good = _snapshot(model, guide, optimizer, step_hooks)
            if history.best_epoch is None or val < history.val_loss[history.best_epoch]:
                history.best_epoch = epoch
                best = {"model": good["model"], "guide": good["guide"]}
            postfix = {"loss": f"{history.train_loss[-1]:.3f}", "val": f"{val:.3f}"}
            bar.set_postfix(postfix, kl=weighting.weight, refresh=False)  # tqdm redraws at its pace
            waited = epoch - history.best_epoch
            if patience is not None and _settled(kl_weight, epoch, epochs) and waited >= patience:
                history.stopped = f"{EARLY_STOPPING}: no validation improvement for {waited} epochs"
            if checkpoint is not None:
                rng = replicas.gather_rng()  # every rank takes part; rank 0 writes
                last = bool(history.stopped) or epoch == epochs - 1
                due = epoch == start or last or time.monotonic() - saved_at >= checkpoint_every
                if due and replicas.is_zero:
                    state = {**good, "torch_rng": rng, "generator": generator.get_state()}
                    save_checkpoint(
                        checkpoint, state=state, best=best, history=history, recipe=recipe
                    )
                    saved_at = time.monotonic()
            if history.stopped:
                break
    bar.close()
    if restore_best and best is not None:
        _restore(best, model, guide)
    return history


@contextlib.contextmanager
def _no_nan_warnings() -> Iterator[None]:
    """Silence Pyro's "Encountered NaN" warnings: fit stops on a non-finite loss itself and
    says so in one line, which they would only precede."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Encountered NaN", category=UserWarning)
        yield


def _step_loss(
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


_NAN_PARAMETERS = "parameters (after a NaN gradient)"
_BLOWN_UP = "a validation loss of"


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


def _validation_loss(model, guide, objective, split, terms, replicas: Replicas) -> float:
    """:func:`evaluate_loss` of ``split``, each rank on its slice, summed over ranks."""
    shard = replicas.shard_split(split)
    total = evaluate_loss(model, guide, objective, shard, terms) * len(shard) if len(shard) else 0.0
    return replicas.sum(total) / len(split)


def _replicas(device: str | torch.device | Devices | Replicas) -> Replicas:
    if isinstance(device, Replicas):
        return device
    return (device if isinstance(device, Devices) else Devices.parse(device)).start()


def _build_optimizer(factory, parameters, lr, model, guide) -> torch.optim.Optimizer:
    """The optimiser from ``factory`` (default Adam at ``lr``), refused if it misses any
    parameter: that parameter would silently stay at its initial value.

    The default Adam updates all parameters at once (``foreach``), as it does on CUDA: on CPU
    the numbers are the same and a digits-sized step is 3 % faster than one tensor at a time.
    """
    if factory is None:
        optimizer = torch.optim.Adam(parameters, lr=lr, foreach=True)
    else:
        optimizer = factory(parameters)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError(
            f"optimizer: expected a factory returning a torch.optim.Optimizer, got "
            f"{type(optimizer).__name__}"
        )
    covered = {id(p) for group in optimizer.param_groups for p in group["params"]}
    named = [
        (f"{role}.{n}", p)
        for role, m in (("model", model), ("guide", guide))
        for n, p in m.named_parameters()
    ]
    names = {id(p): name for name, p in named}
    missing = [names.get(id(p), "?") for p in parameters if id(p) not in covered]
    if missing:
        raise ValueError(
            f"optimizer: the optimiser leaves {len(missing)} parameter(s) out, e.g. "
            f"{missing[0]!r}; every parameter of model and guide must be in one group"
        )
    return optimizer


def _with_state(hook: StepHook) -> Callable[[FitState], None]:
    """``hook`` as a callable of the state; a hook written without an argument gets none."""
    try:
        takes_state = bool(inspect.signature(hook).parameters)
    except (TypeError, ValueError):
        takes_state = True
    return hook if takes_state else lambda state: hook()


def save_checkpoint(
    path: str | os.PathLike,
    *,
    state: dict[str, Any],
    best: dict[str, Any] | None,
    history: History,
    recipe: dict[str, Any] | None,
) -> Path:
    """Write a checkpoint atomically: a temporary file in the same folder, then a rename.

    A crash mid-write leaves the previous checkpoint intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "epoch": history.epochs,
        "state": state,
        "best": best,
        "history": history.as_dict(),
        "recipe": recipe or {},
    }
    write_atomically(path, lambda f: torch.save(payload, f))
    return path


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`fit`, with a clear error for missing or corrupt files.

    Returns:
        dict with ``epoch`` (epochs completed), ``state`` (last epoch: model, guide, optimizer,
        RNG), ``best`` (weights of the best validation epoch, or None), ``history`` and
        ``recipe``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint: no such file {str(path)!r}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"checkpoint: {str(path)!r} is not a readable checkpoint ({e})") from e
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint: {str(path)!r} is not a {CHECKPOINT_FORMAT} file")
    problem = _payload_problem(payload)
    if problem:
        raise ValueError(f"checkpoint: {str(path)!r} is damaged or hand-made: {problem}")
    return payload


# What fit and load_run read from a checkpoint, and the type each must have.
_PAYLOAD_TYPES = {"state": dict, "history": dict, "recipe": dict}
_STATE_KEYS = ("model", "guide", "optimizer", "torch_rng", "generator")


def _payload_problem(payload: dict[str, Any]) -> str:
    """What is missing or of the wrong type in a checkpoint's payload ("" when nothing)."""
    for key, kind in _PAYLOAD_TYPES.items():
        if not isinstance(payload.get(key), kind):
            return (
                f"expected {key!r} to be a {kind.__name__}, got {type(payload.get(key)).__name__}"
            )
    missing = [key for key in _STATE_KEYS if key not in payload["state"]]
    if missing:
        return f"its state lacks {', '.join(missing)}"
    if not (payload.get("best") is None or isinstance(payload["best"], dict)):
        return f"expected 'best' to be a dict or None, got {type(payload['best']).__name__}"
    try:
        History.from_dict(payload["history"])
    except TypeError as e:
        return f"its history is not a pyromix History ({e})"
    return ""
