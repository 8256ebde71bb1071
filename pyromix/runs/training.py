"""Train a prepared run, checkpointing to its run directory and recording its configuration."""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path
from typing import Any

from ..capture import CAPTURE_AFTER
from ..distributed import Devices, Replicas, launched_worker
from ..recipes import get_recipe, recipe_origin
from ..run_config import read_config, run_config, version_changes, write_config
from ..rundir import CHECKPOINT, refuse_existing_run, run_lock
from ..train import fit
from .prepare import prepare_recipe
from .run import Run

__all__ = ["CHECKPOINT_EVERY", "train_run", "train_recipe"]

# A checkpoint per epoch cost a tenth of a digits epoch (serialising and fsync); a killed run
# loses at most this many seconds.
CHECKPOINT_EVERY = 10.0


def train_run(
    run: Run,
    *,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    devices: Devices | Replicas | None = None,
    validate_steps: bool = False,
    checkpoint_every: float = CHECKPOINT_EVERY,
    capture_after: int | None = CAPTURE_AFTER,
    stop_after: int | None = None,
) -> Run:
    """Train a prepared run in place (checkpointing to ``out/checkpoint.pt``) and return it.

    ``devices`` (:class:`pyromix.distributed.Devices`, or its started ``Replicas``) trains on
    several devices or processes; by default the run trains on its ``device`` argument.
    Pretraining runs in full on every process, from the same seed, so all start alike.
    ``validate_steps`` runs Pyro's checks on every step, not only the first,
    ``checkpoint_every`` sets the seconds between checkpoints, and ``capture_after`` when steps
    are captured (None: never; :func:`pyromix.train.fit`). ``stop_after`` stops after that many
    epochs, with the schedules of the whole run (a start's budget, :mod:`pyromix.restarts`).
    """
    recipe, args = get_recipe(run.name), run.args
    replicas = devices if isinstance(devices, Replicas) else _start(devices, args)
    device = replicas.device
    if (
        recipe.initialize is not None
        and run.history.epochs == 0
        and not _has_checkpoint(out, resume)
    ):
        run.model.to(device), run.guide.to(device)
        recipe.initialize(run.model, run.guide, run.dataset.to(device), args)
    hooks = recipe.step_hooks(run.model, run.guide, run.dataset.to(device), args)
    if out is not None and replicas.is_zero:
        _record_config(out, run.name, args, resume)
    run.history = fit(
        run.model,
        run.guide,
        run.dataset,
        recipe.objective(args),
        epochs=args["epochs"] if stop_after is None else stop_after,
        batch_size=args["batch_size"],
        lr=args["lr"],
        kl_weight=recipe.kl_weight(args),
        schedules=recipe.schedules(run.model, run.guide, args),
        step_hooks=hooks,
        optimizer=None if recipe.optimizer is None else recipe.optimizer(args),
        restore_best=recipe.restore_best,
        loss_terms=recipe.loss_terms(run.model, run.guide, run.dataset.to(args["device"]), args),
        patience=args["patience"],
        seed=args["seed"],
        device=replicas,
        checkpoint=None if out is None else Path(out) / CHECKPOINT,
        resume=resume,
        recipe={"name": run.name, "args": args, "origin": recipe_origin(run.name)},
        progress=progress,
        validate_steps=validate_steps,
        checkpoint_every=checkpoint_every,
        capture_after=capture_after,
    )
    run.hooks, run.restore_best = hooks, recipe.restore_best
    return run


def _record_config(out: str | os.PathLike, name: str, args: dict[str, Any], resume: bool) -> None:
    """Write ``out/config.json`` before training; on resume, say which versions changed."""
    changed = version_changes(read_config(out)) if resume else []
    if changed:
        warnings.warn(
            f"resume: {out} was trained with other software ({', '.join(changed)}); the resumed "
            "run's numbers may differ from an uninterrupted one",
            stacklevel=3,
        )
    write_config(out, run_config(name, args, recipe_origin(name)))


def _start(devices: Devices | None, args: dict[str, Any]) -> Replicas:
    return (devices or Devices.parse(args["device"])).start()


def _has_checkpoint(out, resume: bool) -> bool:
    return resume and out is not None and (Path(out) / CHECKPOINT).exists()


def train_recipe(
    name: str,
    data: Any = None,
    *,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    force: bool = False,
    labels=None,
    device: str = "cpu",
    devices: Devices | None = None,
    progress: bool = True,
    **overrides: Any,
) -> Run:
    """Build the recipe ``name`` with its paper defaults and train it.

    Arguments:
        name: a registered recipe (:func:`pyromix.recipes.register_recipe`), or an entry point.
        data: a dataset name, a path to .npy/.npz/.csv, or an array (see
            :func:`pyromix.data.load_dataset`); None: ``"digits"``, or the data of the run
            being resumed.
        out: run directory; the checkpoint is written there after the first and last epochs and
            at most every ``CHECKPOINT_EVERY`` (10) seconds in between. The directory
            is locked while training: a second writer gets :class:`pyromix.rundir.RunDirectoryBusy`.
        resume: continue from ``out/checkpoint.pt`` when it exists (its arguments are reused;
            ``epochs`` and ``patience`` may change, any other argument given must match).
        force: start a new run in ``out`` even though it already holds one (without ``resume``
            or ``force``, an existing run is refused and left as it is).
        labels: labels for user data.
        device: ``"cpu"`` or ``"cuda"``.
        devices: several devices or processes, mixed precision
            (:class:`pyromix.distributed.Devices`); overrides ``device``. Fabric starts the other
            processes by re-running the script; they train and write nothing.
        progress: show a progress bar.
        **overrides: recipe arguments (``latent_dim``, ``hidden``, ``epochs``, ``lr``, ``warmup``,
            ``likelihood``, ``binarize``, ``split_seed``, ``limit``, ...); unknown names raise.

    Returns:
        The trained :class:`Run` (weights of the best validation epoch).

    Example:
        >>> run = train_recipe("vae", "digits", epochs=5, progress=False)  # doctest: +SKIP
        >>> evaluate_run(run)["test_log_likelihood"]  # doctest: +SKIP
    """
    if devices is not None:
        device = devices.device_name
    if out is None:
        run = prepare_recipe(name, data, labels=labels, device=device, **overrides)
        return train_run(run, progress=progress, devices=devices)
    # Rank 0 holds the run directory; the processes it starts write nothing there.
    worker = devices is not None and devices.distributed and launched_worker()
    with contextlib.nullcontext() if worker else run_lock(out):
        refuse_existing_run(out, resume=resume, force=force)
        run = prepare_recipe(
            name, data, out=out, resume=resume, labels=labels, device=device, **overrides
        )
        return train_run(run, out=out, resume=resume, progress=progress, devices=devices)
