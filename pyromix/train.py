"""The SVI training loop: mini-batches, Adam, validation, early stopping, checkpoints, NaN guard."""

from __future__ import annotations

import contextlib
import copy
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import pyro
import torch
from pyro.infer import ELBO
from torch import nn
from tqdm.auto import tqdm

from .data import Dataset, Split, batches
from .distributed import Devices, Replicas
from .evaluate import eval_mode
from .infer.scale import LatentScaleMessenger
from .infer.schedules import Weight, weight_at

__all__ = [
    "History",
    "StepHook",
    "TrainingDiverged",
    "fit",
    "training_step",
    "evaluate_loss",
    "resolve_device",
    "unique_parameters",
    "save_checkpoint",
    "load_checkpoint",
    "CHECKPOINT_FORMAT",
]

CHECKPOINT_FORMAT = "pyromix-checkpoint-1"
EVAL_BATCH_SIZE = 1000


@dataclass
class History:
    """Per-epoch record of a run; losses are negative objectives in nats per data point.

    ``train_loss`` is the weighted objective actually optimised (KL weight ``kl_weight``);
    ``val_loss`` is the full objective (weight 1) on the validation split. ``best_epoch`` indexes
    the lowest ``val_loss``; ``stopped`` says why training ended before ``epochs`` ("" if not).
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    kl_weight: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stopped: str = ""

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "History":
        return cls(**d)


class StepHook(Protocol):
    """Called by :func:`fit` after every optimiser step, with its state in the checkpoint.

    For training that interleaves other updates with the SVI steps, such as the discriminator
    steps of the implicit prior (:class:`pyromix.infer.DensityRatioSteps`).
    """

    def __call__(self) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


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
def evaluate_loss(model: nn.Module, guide: nn.Module, objective: ELBO, split: Split) -> float:
    """The full objective (KL weight 1) per data point on ``split``, parameters untouched.

    Networks run in eval mode (no dropout) and return to their previous mode after.
    """
    with eval_mode(model, guide):
        total = sum(objective.loss(model, guide, x) for x, _ in batches(split, EVAL_BATCH_SIZE))
    return total / len(split)


def _snapshot(model, guide, optimizer, hooks) -> dict[str, Any]:
    return copy.deepcopy(
        {
            "model": model.state_dict(),
            "guide": guide.state_dict(),
            "optimizer": optimizer.state_dict(),
            "hooks": [hook.state_dict() for hook in hooks],
        }
    )


def _restore(snapshot, model, guide, optimizer=None, hooks=()) -> None:
    model.load_state_dict(snapshot["model"])
    guide.load_state_dict(snapshot["guide"])
    if optimizer is not None:
        optimizer.load_state_dict(snapshot["optimizer"])
    for hook, state in zip(hooks, snapshot.get("hooks", [])):
        hook.load_state_dict(state)


def _diverged(what: str, epoch: int, history: History, step: int | None = None) -> TrainingDiverged:
    """Training stopped at ``epoch`` (0-based; ``step`` too, None for validation)."""
    where = f"epoch {epoch + 1}" + ("" if step is None else f", step {step + 1}")
    return TrainingDiverged(
        f"non-finite {what} at {where}; parameters restored to the end of epoch {epoch} "
        "(try a lower learning rate)",
        history,
    )


def _settled(kl_weight: Weight, epoch: int, epochs: int) -> bool:
    # Early stopping compares validation losses only once the KL weight has reached its final
    # value: during warm-up the optimised objective changes from epoch to epoch.
    return weight_at(kl_weight, epoch) == weight_at(kl_weight, epochs - 1)


def fit(
    model: nn.Module,
    guide: nn.Module,
    data: Dataset,
    objective: ELBO,
    *,
    epochs: int = 100,
    batch_size: int = 100,
    lr: float = 1e-3,
    kl_weight: Weight = 1.0,
    schedules: Sequence[Callable[[int], Any]] = (),
    step_hooks: Sequence[StepHook] = (),
    patience: int | None = None,
    restore_best: bool = True,
    seed: int | None = 0,
    device: str | torch.device | Devices | Replicas = "cpu",
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    recipe: dict[str, Any] | None = None,
    progress: bool = True,
    validate_steps: bool = False,
) -> History:
    """Train ``model`` and ``guide`` by stochastic variational inference.

    Each epoch runs one pass of shuffled mini-batches through ``objective.loss_and_grads`` and an
    Adam step, then measures the full objective on the validation split without touching
    parameters. Any Pyro ELBO works (Trace_ELBO, TraceMeanField_ELBO, TraceEnum_ELBO, RenyiELBO,
    TraceGraph_ELBO, or one from :mod:`pyromix.infer`).

    With several processes (:class:`pyromix.distributed.Devices`), every process runs this loop
    on the same global batches: each takes its slice, gradients and losses are summed over
    processes after every step (so each step is the one-process step of the whole batch, with
    other noise), the validation loss is summed likewise, and only rank 0 writes the checkpoint
    and shows the progress bar. A step hook's updates are rank 0's, broadcast to the others.

    Arguments:
        model, guide: Pyro programs (``nn.Module``) taking ``(x, y=None)``.
        data: a :class:`pyromix.data.Dataset`; its train split is batched (with dynamic
            binarisation if the dataset asks for it), its val split is validated on.
        objective: a Pyro ELBO instance.
        epochs: total number of epochs, counting those of a resumed run.
        batch_size: mini-batch size (the global batch, summed over processes).
        lr: Adam learning rate.
        kl_weight: a number or a schedule ``epoch -> weight`` scaling the latent sites of model
            and guide alike (:class:`pyromix.infer.KLWarmup` for warm-up, a constant for beta).
        schedules: callables ``schedule(epoch)`` run at the start of every epoch (std annealing).
        step_hooks: :class:`StepHook` s called after every optimiser step (the discriminator
            steps of the implicit prior); restored with the run on a NaN or on resume.
        patience: stop after this many epochs without a better validation loss (counted once
            the KL weight has settled); ``None`` trains all epochs.
        restore_best: end with the weights of the best validation epoch.
        seed: seeds Pyro/torch (``seed + rank`` on other ranks) and the batch order; ``None``
            leaves the RNGs alone.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; or a :class:`~pyromix.distributed.Devices`
            (accelerator, devices, strategy, nodes, precision) or the started
            :class:`~pyromix.distributed.Replicas`. Modules and data are moved there.
        checkpoint: file written atomically after every epoch (model, guide, optimiser, epoch,
            history, RNG state of every process, best weights, and ``recipe``); rank 0 writes it.
        resume: continue from ``checkpoint`` if it exists (with as many processes as wrote it).
        recipe: plain-data arguments stored in the checkpoint to rebuild model and guide.
        progress: show a tqdm progress bar (rank 0).
        validate_steps: run Pyro's argument and structure checks on every step; by default
            only the first step of the call is checked (see :func:`training_step`).

    Returns:
        The :class:`History`.

    Raises:
        TrainingDiverged: on a NaN or infinite loss or gradient, after restoring the state at
            the start of the epoch (and leaving the last checkpoint as it was).

    Example:
        >>> data = load_dataset("digits", binarize="dynamic")  # doctest: +SKIP
        >>> history = fit(model, guide, data, Trace_ELBO(), epochs=5)  # doctest: +SKIP
    """
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise ValueError(
            f"expected epochs >= 1, batch_size >= 1 and lr > 0; got epochs={epochs}, "
            f"batch_size={batch_size}, lr={lr}"
        )
    if patience is not None and patience < 1:
        raise ValueError(f"patience: expected an integer >= 1 or None, got {patience}")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs the checkpoint path to resume from")
    replicas = _replicas(device)
    if batch_size < replicas.world_size:
        raise ValueError(
            f"batch_size: expected at least one point per process ({replicas.world_size}), "
            f"got {batch_size}"
        )
    model.to(replicas.device), guide.to(replicas.device)
    data = data.to(replicas.device)
    parameters = unique_parameters(model, guide)
    optimizer = torch.optim.Adam(parameters, lr=lr)
    weighting = LatentScaleMessenger(weight_at(kl_weight, 0))
    train_model, train_guide = weighting(model), weighting(guide)
    val_split = replicas.shard_split(data.val)
    generator = torch.Generator()
    if seed is not None:
        replicas.seed(seed)
        generator.manual_seed(seed)  # the same batch order on every rank

    history, best = History(), None
    if resume and Path(checkpoint).exists():
        saved = load_checkpoint(checkpoint)
        _restore(saved["state"], model, guide, optimizer, step_hooks)
        history, best = History.from_dict(saved["history"]), saved["best"]
        rng = saved["state"]["torch_rng"]
        replicas.set_rng(rng if isinstance(rng, list) else [rng])
        generator.set_state(saved["state"]["generator"])

    model.train(), guide.train()
    # One deep copy per epoch: the state at the end of the last epoch is this epoch's fallback on
    # a non-finite loss, the checkpoint's state and, when validation improved, the best weights.
    good = _snapshot(model, guide, optimizer, step_hooks)
    hook_parameters = [p for hook in step_hooks for p in getattr(hook, "parameters", list)()]
    bar = tqdm(
        range(history.epochs, epochs),
        desc="fit",
        unit="epoch",
        disable=not progress or not replicas.is_zero,
    )
    checked = False
    for epoch in bar:
        started = time.perf_counter()
        weighting.weight = weight_at(kl_weight, epoch)
        for schedule in schedules:
            schedule(epoch)
        total = 0.0
        for step, (x, _) in enumerate(data.train_batches(batch_size, generator)):
            optimizer.zero_grad(set_to_none=True)
            try:
                validate = validate_steps or not checked
                with replicas.autocast():
                    loss = training_step(
                        objective, train_model, train_guide, replicas.shard(x), validate=validate
                    )
                checked = True
            except Exception as error:
                # A finite loss can have NaN gradients (a density whose scale collapsed): the
                # Adam step writes them into the weights, and this step then fails, typically in
                # a distribution's argument check. Checking every gradient instead costs ~10 %.
                if all(torch.isfinite(p).all() for p in parameters):
                    raise
                _restore(good, model, guide, optimizer, step_hooks)
                raise _diverged(_NAN_PARAMETERS, epoch, history, step) from error
            loss = replicas.reduce_gradients(parameters, loss)
            if not math.isfinite(loss):
                # Unchecked steps run NaN weights (a NaN gradient written by the last Adam step)
                # to a NaN loss where a checked step fails in a distribution's argument check.
                finite = all(torch.isfinite(p).all() for p in parameters)
                what = f"training loss ({loss})" if finite else _NAN_PARAMETERS
                _restore(good, model, guide, optimizer, step_hooks)
                raise _diverged(what, epoch, history, step)
            optimizer.step()
            for hook in step_hooks:
                hook()
            replicas.broadcast(hook_parameters)
            total += loss
        with replicas.autocast():
            val = replicas.sum(evaluate_loss(model, guide, objective, val_split) * len(val_split))
        val /= len(data.val)
        if not math.isfinite(val):
            _restore(good, model, guide, optimizer, step_hooks)
            raise _diverged(f"validation loss ({val})", epoch, history)
        history.train_loss.append(total / len(data.train))
        history.val_loss.append(val)
        history.kl_weight.append(weighting.weight)
        history.seconds.append(time.perf_counter() - started)
        good = _snapshot(model, guide, optimizer, step_hooks)
        if history.best_epoch is None or val < history.val_loss[history.best_epoch]:
            history.best_epoch = epoch
            best = {"model": good["model"], "guide": good["guide"]}
        postfix = {"loss": f"{history.train_loss[-1]:.3f}", "val": f"{val:.3f}"}
        bar.set_postfix(postfix, kl=weighting.weight, refresh=False)  # tqdm redraws at its pace
        waited = epoch - history.best_epoch
        if patience is not None and _settled(kl_weight, epoch, epochs) and waited >= patience:
            history.stopped = f"early stopping: no validation improvement for {waited} epochs"
        if checkpoint is not None:
            rng = replicas.gather_rng()  # every rank takes part; rank 0 writes
            state = {**good, "torch_rng": rng, "generator": generator.get_state()}
            if replicas.is_zero:
                save_checkpoint(checkpoint, state=state, best=best, history=history, recipe=recipe)
        if history.stopped:
            break
    bar.close()
    if restore_best and best is not None:
        _restore(best, model, guide)
    return history


_NAN_PARAMETERS = "parameters (after a NaN or infinite gradient)"


def training_step(
    objective: ELBO, model: Callable, guide: Callable, x: torch.Tensor, *, validate: bool
) -> float:
    """``objective.loss_and_grads(model, guide, x)``, with Pyro's checks only if ``validate``.

    Pyro checks every distribution's arguments and values and every module's parameters on
    each call; they change no number (loss, gradients and draws are the same either way) but
    cost 5-10 % of a small model's step. :func:`fit` checks the first step of a run, where a
    model's mistakes show, and trusts the structure it saw afterwards; non-finite values still
    stop training through the loss.

    Arguments:
        objective: a Pyro ELBO.
        model, guide: Pyro programs taking ``x``.
        x: a batch.
        validate: run Pyro's checks (``pyro.validation_enabled``); False turns them off for
            this call, True leaves them as they are globally.

    Returns:
        The loss as a float; gradients are accumulated in the parameters' ``.grad``.

    Example:
        >>> loss = training_step(Trace_ELBO(), model, guide, x, validate=False)  # doctest: +SKIP
    """
    with contextlib.nullcontext() if validate else pyro.validation_enabled(False):
        return objective.loss_and_grads(model, guide, x)


def _replicas(device: str | torch.device | Devices | Replicas) -> Replicas:
    if isinstance(device, Replicas):
        return device
    return (device if isinstance(device, Devices) else Devices.parse(device)).start()


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
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
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
    return payload
