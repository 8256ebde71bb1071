"""Train, reload, evaluate and report a named recipe: the layer the CLI and estimators share.

A run directory holds ``checkpoint.pt`` (weights, optimiser, history and the recipe's plain-data
arguments, including how to reload the data), ``metrics.json`` and the figures.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import warnings
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pyro
import torch
from torch import nn

from . import plots
from .capture import CAPTURE_AFTER
from .data import Dataset, load_dataset
from .diagnostics import active_units, cluster_usage, collapse_warnings, plot_diagnostics
from .distributed import Devices, Replicas, launched_worker
from .flows import infer_levels
from .likelihoods import LIKELIHOODS, init_from_data_
from .likelihoods.choice import resolve_likelihood
from .identity import is_data_file, locate_data, record_data
from .footing import footing
from .evaluable import (
    EVAL_LABELS,
    MARGINAL,
    PREDICTIVE,
    check_evaluable,
    label_quantity,
    revealed_batch,
    validate_as_trained,
    with_quantity,
)
from .evaluate import (
    LogLikelihood,
    bits_per_dim,
    clustering_scores,
    fit_classifier,
    latent_gmm,
    log_likelihood,
    mode_coverage,
)
from .infer.schedules import KLWarmup
from .labels import accepts_labels
from .protocol import capabilities
from .recipes import COMMON_DEFAULTS, get_recipe, recipe_origin, resolve_recipe
from .recipes.registry import build_programs
from .resources import check_fits, check_training_fits
from .run_config import read_config, run_config, version_changes, write_config
from .rundir import CHECKPOINT, METRICS, refuse_existing_run, run_lock, write_atomically
from .train import (
    MAX_LR,
    History,
    check_same_parameters,
    fit,
    load_checkpoint,
    resolve_device,
)

__all__ = [
    "RUN_ARGS_KEYS",
    "Run",
    "prepare_recipe",
    "train_run",
    "train_recipe",
    "load_run",
    "weights_epoch",
    "evaluate_run",
    "evaluate_points",
    "cluster_probabilities",
    "aggregated_posterior",
    "reconstruct",
    "write_report",
    "skipped_features",
    "generate",
    "read_metrics",
    "load_run_checkpoint",
    "RESUMABLE",
    "RUN_IDENTITY",
]

MAX_SAMPLE_ROWS = 10
EVAL_CHUNK = 1000  # points per encoder pass where a whole split could be too large at once
DATA_KEYS = {
    "data": "digits",
    "labels": None,
    "data_dir": None,
    "binarize": "auto",
    "split_seed": 0,
    "limit": None,
    "labeled": 0,
    "eval_labels": "hidden",
}
# Observation models that are a recipe's own: a flow's density, a GAN's none.
RECIPE_LIKELIHOODS = ("flow", "none")
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
# Per-dataset defaults from the papers: Takahashi et al. (2019) uses a 2-D latent on OneHot.
DATASET_DEFAULTS = {"onehot": {"latent_dim": 2}}
MAX_SEED = 2**32 - 1  # pyro.set_rng_seed seeds NumPy too, whose seeds stop here
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


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and value >= 1


def _positive_ints(value: Any) -> bool:
    """A non-empty list of integers >= 1 (hidden layer widths)."""
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(map(_positive_int, value))


def _need(args: dict[str, Any], ok: bool, key: str, expected: str) -> None:
    if not ok:
        raise ValueError(f"{key}: expected {expected}, got {args[key]!r}")


def _check_args(args: dict[str, Any]) -> None:
    need = partial(_need, args)
    for key in ("latent_dim", "epochs", "batch_size", "particles"):
        need(_positive_int(args[key]), key, "an integer >= 1")
    need(_positive_ints(args["hidden"]), "hidden", "a non-empty list of integers >= 1")
    need(args["arch"] in ("mlp", "conv"), "arch", "'mlp' or 'conv'")
    need(
        args["likelihood"] in ("auto", *LIKELIHOODS, *RECIPE_LIKELIHOODS),
        "likelihood",
        f"'auto', {', '.join(map(repr, LIKELIHOODS))}, 'flow' (the flow recipe's) or 'none' "
        "(the gan's)",
    )
    need(
        args["binarize"] in ("auto", "none", "static", "dynamic"),
        "binarize",
        "'auto', 'none', 'static' or 'dynamic'",
    )
    lr_ok = isinstance(args["lr"], (int, float)) and 0 < args["lr"] <= MAX_LR
    need(lr_ok, "lr", f"a number > 0 and at most {MAX_LR:.3g} (float32's largest)")
    need(isinstance(args["warmup"], int) and args["warmup"] >= 0, "warmup", "an integer >= 0")
    beta_ok = isinstance(args["beta"], (int, float)) and 0 <= args["beta"] <= MAX_LR
    need(beta_ok, "beta", f"a number >= 0 and at most {MAX_LR:.3g} (float32's largest)")
    seed_ok = isinstance(args["seed"], int) and 0 <= args["seed"] <= MAX_SEED
    need(seed_ok, "seed", f"an integer in [0, {MAX_SEED}] (NumPy's seeds)")
    need(args["std_min"] > 0, "std_min", "a number > 0")
    need(args.get("eval_labels", "hidden") in EVAL_LABELS, "eval_labels", "'hidden' or 'revealed'")
    need(
        args["patience"] is None or _positive_int(args["patience"]),
        "patience",
        "an integer >= 1 or None",
    )


def _load_data(args: dict[str, Any], source: Any, labels=None) -> Dataset:
    """Load ``source`` as ``args`` say, resolving ``likelihood`` and ``binarize`` in ``args``."""
    labels = labels if labels is not None else args.get("labels")
    options = dict(
        seed=args["split_seed"], data_dir=args["data_dir"], labels=labels, limit=args["limit"]
    )
    dataset = load_dataset(source, binarize="none", **options)
    resolve_likelihood(args, dataset)
    if args["binarize"] == "auto":
        needs = args["likelihood"] == "bernoulli" and not dataset.is_binary
        args["binarize"] = "dynamic" if needs else "none"
    if args["binarize"] != "none":
        dataset = dataset.binarized(args["binarize"], args["split_seed"])
    if args["likelihood"] == "bernoulli" and not dataset.is_binary:
        raise ValueError(
            "likelihood: 'bernoulli' needs data in {0, 1}; this data is not binary "
            "(use --binarize dynamic|static for [0, 1] intensities, or --likelihood gaussian)"
        )
    if args.get("labeled"):  # runs saved before labels existed reveal none
        dataset = validate_as_trained(dataset.reveal(args["labeled"], args["split_seed"]))
    return dataset


def prepare_recipe(
    name: str,
    data: Any = None,
    *,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    labels=None,
    device: str = "cpu",
    **overrides: Any,
) -> Run:
    """Validate the arguments, load the data and build the untrained model and guide.

    Every bad input (unknown recipe or argument, bad value, missing or unsuitable data, a
    configuration too large for the machine's memory, settings that conflict with the run being
    resumed) raises here, before any training. Arguments are those of :func:`train_recipe`.
    """
    recipe = get_recipe(name)
    resuming = resume and out is not None and (Path(out) / CHECKPOINT).exists()
    if data is None and not resuming:
        data = "digits"
    dataset_name = data if isinstance(data, str) else None
    defaults = {
        **COMMON_DEFAULTS,
        **DATA_KEYS,
        **DATASET_DEFAULTS.get(dataset_name, {}),
        **recipe.defaults,
    }
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise ValueError(f"unknown argument(s) {unknown}; valid: {', '.join(sorted(defaults))}")
    checkpoint = Path(out) / CHECKPOINT if out is not None else None
    history = History()
    if resume and checkpoint is not None and checkpoint.exists():
        saved = load_run_checkpoint(checkpoint)
        if saved["recipe"]["name"] != name:
            raise ValueError(
                f"resume: {checkpoint} holds a {saved['recipe'].get('name')!r} run, not {name!r}"
            )
        args = dict(saved["recipe"]["args"])
        _check_resumable(checkpoint, args, overrides, data, labels)
        data, labels = locate_data(args, data, labels)  # the same files, wherever they are now
        args.update({k: v for k, v in overrides.items() if k in RESUMABLE})
        history = History.from_dict(saved["history"])
    else:
        args = {**defaults, **overrides}
        if args["warmup"] is None:  # Lavda et al. (2020) warms up 100 epochs; here a quarter of the run
            args["warmup"] = args["epochs"] // 4 if isinstance(args["epochs"], int) else 0
        record_data(args, data, labels)  # where the files are and what they hold
    _check_args(args)
    if not recipe.kl_weighted and (args["warmup"] or args["beta"] != 1):
        raise ValueError(
            f"warmup/beta: the {name} objective has no KL term to weight; leave them at 0/1"
        )
    args["device"] = str(resolve_device(device))
    dataset = _load_data(args, data if args["data"] == "array" else args["data"], labels)
    if args["arch"] == "conv" and dataset.image_shape is None:
        raise ValueError("arch: 'conv' needs image data (H, W); this dataset has none")
    args.update(data_dim=dataset.data_dim, image_shape=dataset.image_shape, dataset=dataset.name)
    own = recipe.defaults.get("likelihood")
    if (own in RECIPE_LIKELIHOODS or args["likelihood"] in RECIPE_LIKELIHOODS) and args[
        "likelihood"
    ] != own:
        raise ValueError(
            f"likelihood: the {name} recipe takes {own if own in RECIPE_LIKELIHOODS else 'auto'!r}"
            f" ('flow' and 'none' belong to the flow and gan recipes), got {args['likelihood']!r}"
        )
    if args.get("levels") == "auto":
        args["levels"] = 2 if dataset.is_binary else infer_levels(dataset.train.x)
    if "levels" in args:
        levels = args["levels"]
        _need(
            args,
            levels is None or (_positive_int(levels) and levels >= 2),
            "levels",
            "'auto', None or an integer >= 2",
        )
    if "clusters" in args and args["clusters"] is None:
        args["clusters"] = dataset.num_classes or 10
    for key in ("clusters", "components"):
        if key in args:
            _need(args, _positive_int(args[key]), key, "an integer >= 1")
    if "clusters" in args and args["clusters"] > len(dataset.train):
        raise ValueError(
            f"clusters: expected at most the {len(dataset.train)} training points, "
            f"got {args['clusters']}"
        )
    if "alpha" in args:
        alpha = args["alpha"]
        _need(args, isinstance(alpha, (int, float)) and alpha >= 0, "alpha", "a number >= 0")
    if "pseudo_init" in args:
        _need(args, args["pseudo_init"] in ("random", "data"), "pseudo_init", "'random' or 'data'")
    _check_alternation(args)
    check_training_fits(args, recipe.objective(args), len(dataset.train))
    pyro.set_rng_seed(args["seed"])
    model, guide = build_programs(name, args)
    # A resumed run's scales come from its checkpoint; under std annealing the annealed floor
    # (from 1, Li et al. 2020) sets the scale, and the learned part keeps its fixed start.
    if not resuming and not args.get("std_annealing"):
        init_from_data_(model, dataset.train.x)
    if dataset.train.labeled is not None and not all(map(accepts_labels, (model, guide))):
        raise ValueError(
            f"labeled: the {name} recipe does not take labels (its model and guide have no "
            "y_mask keyword, see pyromix.labels); leave labeled at 0 for it"
        )
    evaluability = check_evaluable(model, guide, dataset, args)
    if evaluability is not None and evaluability.global_sites:
        warnings.warn(f"{name}: its test score will be the {PREDICTIVE}: {evaluability.describe()}")
    return Run(name, args, model, guide, dataset, history)


def _check_resumable(
    checkpoint: Path, recorded: dict[str, Any], overrides: dict[str, Any], data: Any, labels: Any
) -> None:
    """Refuse to resume with a setting other than the run's, except those of ``RESUMABLE``."""
    given = dict(overrides)
    # Files are compared by content (pyromix.identity.locate_data), names and arrays here.
    if data is not None and not (is_data_file(data) and is_data_file(recorded.get("data"))):
        given["data"] = str(data) if isinstance(data, (str, os.PathLike)) else "array"
    if isinstance(labels, (str, os.PathLike)) and not is_data_file(recorded.get("labels")):
        given["labels"] = str(labels)

    def differs(key: str, value: Any) -> bool:
        old = recorded.get(key)
        if isinstance(value, tuple) or isinstance(old, tuple):
            value, old = list(value), list(old) if old is not None else old
        return value != old and value != "auto"  # "auto" resolves to the recorded choice

    conflicts = [
        f"{key}={value!r} (the run has {recorded.get(key)!r})"
        for key, value in given.items()
        if key not in RESUMABLE and value is not None and differs(key, value)
    ]
    if conflicts:
        raise ValueError(
            f"resume: {checkpoint} was trained with other settings: {', '.join(conflicts)}; "
            f"only {', '.join(RESUMABLE)} and device can change (or start over with --force)"
        )


def _check_alternation(args: dict[str, Any]) -> None:
    """The implicit prior's discriminator settings (Takahashi et al. 2019, Algorithm 1 and 3.2, 5.2)."""
    if "disc_steps" not in args:
        return
    for key in ("vae_steps", "disc_steps"):
        _need(args, _positive_int(args[key]), key, "an integer >= 1")
    disc_batch, dropout, hidden = args["disc_batch_size"], args["disc_dropout"], args["disc_hidden"]
    _need(
        args,
        disc_batch is None or _positive_int(disc_batch),
        "disc_batch_size",
        "an integer >= 1 or None",
    )
    _need(
        args,
        isinstance(dropout, (int, float)) and 0 <= dropout < 1,
        "disc_dropout",
        "a probability in [0, 1)",
    )
    _need(
        args,
        hidden is None or _positive_ints(hidden),
        "disc_hidden",
        "None or a list of integers >= 1",
    )
    # T is trained more than the VAE (3.2): J2 > J1 at equal batch sizes; 5.2's "ten epochs of
    # psi per epoch of theta, phi with M = N" is J2 M > J1 K with fewer, larger steps.
    if not args["disc_steps"] * (disc_batch or args["batch_size"]) > (
        args["vae_steps"] * args["batch_size"]
    ):
        raise ValueError(
            "disc_steps: expected the discriminator to see more samples than the VAE, "
            "disc_steps x disc_batch_size > vae_steps x batch_size (J2 > J1 at equal batch "
            f"sizes, Takahashi et al. (2019) 3.2), got disc_steps={args['disc_steps']}, "
            f"disc_batch_size={disc_batch}, vae_steps={args['vae_steps']}, "
            f"batch_size={args['batch_size']}"
        )


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
        kl_weight=_kl_weight(args),
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


def _kl_weight(args: dict[str, Any]) -> KLWarmup:
    """KL warm-up to ``beta`` over ``warmup`` epochs, or over the whole run for the scheduled
    beta of MVAE (``beta_schedule="linear"``, Chowdhury et al., 5.8)."""
    ramp = args["epochs"] if args.get("beta_schedule") == "linear" else args["warmup"]
    return KLWarmup(ramp, args["beta"])


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


def load_run_checkpoint(checkpoint: str | os.PathLike) -> dict[str, Any]:
    """:func:`pyromix.train.load_checkpoint` for a run's checkpoint, which also records the
    recipe's name, its origin and arguments holding :data:`RUN_ARGS_KEYS`.

    Raises:
        ValueError: one line naming the file, for a checkpoint that ``fit(checkpoint=...)``
            wrote without ``recipe={"name": ..., "args": ...}`` (its model cannot be rebuilt)
            or whose arguments lack what rebuilding its data needs.
    """
    saved = load_checkpoint(checkpoint)
    recipe = saved.get("recipe") or {}
    if not (isinstance(recipe.get("name"), str) and isinstance(recipe.get("args"), dict)):
        raise ValueError(
            f"checkpoint: {str(checkpoint)!r} records no recipe name and arguments (was it "
            "written by fit(checkpoint=...) alone?), so its model cannot be rebuilt; train it "
            "with pyromix fit or train_recipe, or pass fit(recipe={'name': ..., 'args': ...})"
        )
    missing = [key for key in RUN_ARGS_KEYS if key not in recipe["args"]]
    if missing:
        raise ValueError(
            f"checkpoint: {str(checkpoint)!r} records the recipe {recipe['name']!r} without the "
            f"arguments {missing} that rebuilding its data needs (pyromix.runs.RUN_ARGS_KEYS)"
        )
    return saved


def load_run(
    path: str | os.PathLike, *, device: str = "cpu", data: Any = None, labels: Any = None
) -> Run:
    """Rebuild a run from its directory (or checkpoint file) with the weights ``fit`` returned:
    those of the best validation epoch, or of the last epoch for a recipe with
    ``restore_best=False`` (as the checkpoint records; :func:`weights_epoch` says which).

    Arguments:
        path: run directory or checkpoint file.
        device: where to put the networks and data.
        data: the data, for runs trained on an in-memory array; or where the run's data file
            is now, if it moved (:func:`pyromix.identity.locate_data` checks its content).
        labels: where the run's labels file is now, if it moved.
    """
    path = Path(path)
    checkpoint = path / CHECKPOINT if path.is_dir() else path
    if path.is_dir() and not checkpoint.exists():
        raise FileNotFoundError(
            f"run: {str(path)!r} has no {CHECKPOINT}; is it a pyromix fit --out DIR?"
        )
    saved = load_run_checkpoint(checkpoint)
    name, args = saved["recipe"]["name"], dict(saved["recipe"]["args"])
    recipe = resolve_recipe(name, saved["recipe"].get("origin"))
    if args["data"] == "array" and data is None:
        raise ValueError("data: this run was trained on an in-memory array; pass it as data=")
    data, labels = locate_data(args, data, labels)
    try:
        dataset = _load_data(args, data, labels)
        model, guide = build_programs(name, args)
        restore_best = _restores_best(saved, recipe)
        weights = (saved["best"] if restore_best else None) or saved["state"]
        for role, program in (("model", model), ("guide", guide)):
            check_same_parameters(program, weights[role], checkpoint, f"recipe {name!r}'s {role}")
            program.load_state_dict(weights[role])
    except (KeyError, TypeError, RuntimeError) as e:
        # A hand-made or damaged checkpoint: arguments missing, or weights of another shape.
        raise ValueError(
            f"checkpoint: {str(checkpoint)!r} does not rebuild its recipe {name!r} "
            f"({type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''})"
        ) from e
    history = History.from_dict(saved["history"])
    for schedule in recipe.schedules(model, guide, args):
        schedule(history.epochs - 1)  # state the schedules left, e.g. annealed std floors
    device = resolve_device(device)
    model.to(device), guide.to(device)
    dataset = dataset.to(device)
    hooks = recipe.step_hooks(model, guide, dataset, args)
    for hook, state in zip(hooks, saved["state"].get("hooks", [])):
        hook.load_state_dict(state)  # e.g. a GAN's curves and kept generations
    return Run(name, args, model, guide, dataset, history, hooks, restore_best)


def _restores_best(saved: dict[str, Any], recipe) -> bool:
    """Whether the run's weights are the best epoch's: as its checkpoint records, else (older
    checkpoints) as its recipe says."""
    return saved["best"] is not None and saved.get("restore_best", recipe.restore_best)


def weights_epoch(run: Run) -> int:
    """The epoch (1-based) whose weights ``run`` holds: the best one, or the last for a recipe
    with ``restore_best=False``."""
    best = run.history.best_epoch
    return run.history.epochs if best is None or not run.restore_best else best + 1


@torch.no_grad()
def cluster_probabilities(run: Run, x: torch.Tensor) -> torch.Tensor | None:
    """The run's cluster readout for ``x``, shape (N, K), or None for models without clusters.

    q(y | x) from guides that have one; p(y | z) at the posterior mean for models that sum y out
    (VaDE, Chowdhury et al. eq. 16-17).
    """
    if hasattr(run.guide, "cluster_probs"):
        return run.guide.cluster_probs(x)
    if hasattr(run.model, "cluster_posterior") and hasattr(run.guide, "latent_mean"):
        return run.model.cluster_posterior(run.guide.latent_mean(x))
    return None


def evaluate_run(
    run: Run, num_samples: int = 1000, *, eval_labels: str | None = None
) -> dict[str, Any]:
    """The test-split metrics of ``metrics.json``; repeatable (seeded by the run's seed).

    ``eval_labels`` (default: the run's ``eval_labels`` argument, ``"hidden"``) says how the
    test labels reach the model: hidden, giving log p(x) with hidden labels summed out where
    the guide enumerates them, or ``"revealed"``, giving log p(x, y) (log p(x | y) for a model
    without a prior on y). ``footing`` and ``quantity`` record which; ``summed_sites`` and
    ``global_sites`` the sites that evaluation summed exactly or drew once per sample for every
    point (then the score is the held-out predictive density, :mod:`pyromix.evaluable`);
    ``weights_epoch`` the epoch whose weights were scored; ``samples_warning`` is there when
    most points have Pareto k > 0.7.

    Log-likelihood and ELBO are in nats per data point, averaged over the test split; the ELBO
    is estimated from the same S importance samples. ``bits_per_dim`` is given for binary data.
    With labels, ``gmm_acc``/``gmm_nmi``/``gmm_ari`` score a GMM on the test latent means with as
    many components as classes (Chowdhury et al., 4.2), or ``gmm_skipped`` says why no GMM could be
    fitted (latent means collapsed or non-finite, as after a run diverged), and for clustering
    models ``acc``/``nmi``/``ari`` score :func:`cluster_probabilities`' argmax.
    ``prior_is_approximate`` is true where the
    prior density is an estimate (the implicit prior, Takahashi et al. (2019) Table 2's "≈"); such a prior's
    ``prior_log_normalizer`` (log of its integral, 0 when exact; Monte Carlo, biased low) says by
    about how much, and ``test_log_likelihood_normalized`` is the log-likelihood with the prior
    divided by that integral, a proper density (log p(x) shifts by exactly -log Z).
    """
    return evaluate_points(run, num_samples, eval_labels=eval_labels)[0]


NO_LIKELIHOOD = (
    "a GAN is an implicit model: x = G(z) has no density, so it has no log-likelihood, ELBO or "
    "bits/dim; judge it by its generations and the mode coverage of a classifier"
)
COVERAGE_SAMPLES = 1000


def _implicit_model_metrics(run: Run) -> dict[str, Any]:
    """What can be said of a model without a likelihood: its mode coverage on labelled data."""
    metrics: dict[str, Any] = {"test_log_likelihood": None, "note": NO_LIKELIHOOD}
    data, classes = run.dataset, run.dataset.num_classes
    if data.train.y is None or not classes:
        return metrics
    classifier = fit_classifier(data.train.x, data.train.y, seed=run.args["seed"])
    generated = run.model.generate(COVERAGE_SAMPLES)
    metrics.update(mode_coverage(generated, classifier, classes))
    metrics["coverage_samples"] = COVERAGE_SAMPLES
    metrics["classifier_test_accuracy"] = float(
        (classifier(data.test.x) == data.test.y.cpu().numpy()).mean()
    )
    return metrics


def evaluate_points(
    run: Run, num_samples: int = 1000, *, eval_labels: str | None = None
) -> tuple[dict[str, Any], LogLikelihood | None]:
    """:func:`evaluate_run`'s metrics and the per-point
    :class:`~pyromix.evaluate.LogLikelihood` behind them; None for a model without a
    likelihood, a GAN, whose metrics say so in ``note`` and give its mode coverage instead
    (:func:`pyromix.evaluate.mode_coverage`)."""
    pyro.set_rng_seed(run.args["seed"])
    test = run.dataset.test
    history = run.history
    metrics: dict[str, Any] = {
        "model": run.name,
        "dataset": run.args["dataset"],
        "seed": run.args["seed"],
        "split_seed": run.args["split_seed"],
        "epochs": history.epochs,
        "best_epoch": None if history.best_epoch is None else history.best_epoch + 1,
        "stopped": history.stopped,
        "train_seconds": sum(history.seconds),
        "capture": history.capture,
        "test_points": len(test),
        "footing": footing(run.args),
        "weights_epoch": weights_epoch(run),
    }
    if run.args["likelihood"] == "none":
        metrics |= _implicit_model_metrics(run)
        return {**metrics, "warnings": collapse_warnings(metrics)}, None
    mode = run.args.get("eval_labels", "hidden") if eval_labels is None else eval_labels
    if mode not in EVAL_LABELS:
        raise ValueError(f"eval_labels: expected one of {EVAL_LABELS}, got {mode!r}")
    if mode == "revealed" and not all(map(accepts_labels, (run.model, run.guide))):
        raise ValueError(
            f"eval_labels: 'revealed' needs a model and guide that take labels; the {run.name} "
            "recipe's have no y_mask keyword (pyromix.labels)"
        )
    # hidden: a labelled run's test labels all hidden (test.batch reveals none), y summed out
    batch = revealed_batch(test) if mode == "revealed" else test.batch(slice(None))
    ll = log_likelihood(run.model, run.guide, test.x, num_samples, y=batch.y, y_mask=batch.y_mask)
    quantity = MARGINAL
    if mode == "revealed":
        quantity = label_quantity(run.model, revealed_batch(test, slice(0, 2)))
    if ll.global_sites:
        quantity = PREDICTIVE if mode == "hidden" else f"{PREDICTIVE}; {quantity}"
    summary = ll.summary()
    metrics |= {
        "footing": with_quantity(footing(run.args), quantity),
        "quantity": quantity,
        "eval_labels": mode,
        "estimator": ll.estimator(),
        "summed_sites": list(ll.summed_sites),
        "global_sites": list(ll.global_sites),
        "test_elbo": summary["elbo"],
        "test_log_likelihood": summary["log_likelihood"],
        "is_samples": num_samples,
        "pareto_k_max": summary["pareto_k_max"],
        "pareto_k_share_above_0.7": summary["pareto_k_share_above_0.7"],
        "likelihood": run.args["likelihood"],
        "binarize": run.args["binarize"],
        "prior_is_approximate": bool(getattr(run.model, "prior_is_approximate", False)),
    }
    if "likelihood_auto" in run.args:  # why likelihood="auto" chose it
        metrics["likelihood_auto"] = run.args["likelihood_auto"]
    if hasattr(run.model, "log_normalizer"):  # how far an estimated prior is from normalised
        log_z = run.model.log_normalizer()
        metrics["prior_log_normalizer"] = log_z
        metrics["test_log_likelihood_normalized"] = summary["log_likelihood"] - log_z
    metrics["skipped"] = skipped_features(run)
    warning = ll.too_few_samples()
    if warning:
        metrics["samples_warning"] = warning
    if run.dataset.is_binary or run.args.get("levels"):  # a log-probability of discrete levels
        metrics["bits_per_dim"] = bits_per_dim(summary["log_likelihood"], run.dataset.data_dim)
    # Scores count the test points whose label is known (clustering_scores leaves -1 out).
    truth = None if test.y is None else test.y.cpu()
    known = None if truth is None else truth >= 0
    if known is not None and not known.all():
        metrics["test_points_labelled"] = int(known.sum())
    scored = known is not None and bool(known.any())
    probs = cluster_probabilities(run, test.x)
    if probs is not None:
        assigned = probs.argmax(-1).cpu()
        metrics["clusters_used"] = int(assigned.unique().numel())
        metrics |= cluster_usage(assigned, probs.shape[-1])
        if scored:
            metrics.update(clustering_scores(truth.numpy(), assigned.numpy()))
        if scored and run.dataset.train.labeled is not None:
            # trained on labels: classes are the labels, no matching
            metrics["test_accuracy"] = float((assigned[known] == truth[known]).float().mean())
    z = None
    if hasattr(run.guide, "latent_mean") and len(test) > 1:
        with torch.no_grad():
            z = run.guide.latent_mean(test.x)
        metrics |= active_units(z)
    classes = run.dataset.num_classes
    if scored and classes and classes > 1 and z is not None:
        try:
            labels = latent_gmm(z, classes, seed=run.args["seed"])
        except ValueError as e:  # collapsed or non-finite latent means (a diverged run)
            metrics["gmm_skipped"] = str(e).splitlines()[0]
        else:
            metrics.update(clustering_scores(truth.numpy(), labels, prefix="gmm_"))
    metrics["warnings"] = collapse_warnings(metrics)
    if run.restarts:
        metrics["restarts"] = run.restarts
    return metrics, ll


CATEGORY_SOURCES = ("posterior", "prior")


@torch.no_grad()
def aggregated_posterior(run: Run, x: torch.Tensor | None = None) -> torch.Tensor | None:
    """q(c) = (1/n) sum_i q(c | x_i) over the training split (Lavda et al. 2020, eq. 14), shape (K,).

    For cluster models q(c | x) is :func:`cluster_probabilities`; for mixture priors (MG,
    VampPrior) it is the component responsibility p(k | z) at the posterior mean. None for
    models with neither.
    """
    x = run.dataset.train.x if x is None else x
    chunks = x.split(EVAL_CHUNK)
    probs = [cluster_probabilities(run, chunk) for chunk in chunks]
    if probs[0] is None:  # no cluster readout: a mixture prior's responsibilities, if any
        if not (getattr(run.model, "num_components", None) and hasattr(run.guide, "latent_mean")):
            return None
        probs = [run.model.component_posterior(run.guide.latent_mean(chunk)) for chunk in chunks]
    return torch.cat(probs).mean(0)


@torch.no_grad()
def reconstruct(run: Run, x: torch.Tensor) -> torch.Tensor:
    """Decoder means at the posterior mean of z (and the most probable c for decoders that see
    it, as CP-VAE's)."""
    z = run.guide.latent_mean(x)
    if getattr(run.model, "decoder_sees_y", False):
        index = cluster_probabilities(run, x).argmax(-1)
        z = run.model.decoder_input(z, run.model.category(index))
    return run.model.likelihood.mean(z)


def generate(
    run: Run, n: int, *, components=None, categories: str = "posterior"
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` decoder means from the prior, and their binarised draws for a Bernoulli likelihood.

    With ``components`` (an iterable of indices) ``n`` samples are drawn from each component in
    turn: the clusters of a mixture model, or the components of a mixture prior. Otherwise the
    category or component of each sample is drawn from the aggregated posterior q(c) over the
    training data (``categories="posterior"``, CP-VAE's generation, Lavda et al. (2020), 5 and eq. 14) or
    from the prior p(c) (``"prior"``); models without one ignore ``categories``.
    """
    if n < 1:
        raise ValueError(f"n: expected an integer >= 1, got {n}")
    if categories not in CATEGORY_SOURCES:
        raise ValueError(f"categories: expected one of {CATEGORY_SOURCES}, got {categories!r}")
    reason = capabilities(run.model, run.guide)["samples"]
    if reason is not None:
        raise ValueError(f"generate: the {run.name} run cannot sample: {reason} (pyromix.protocol)")
    components = None if components is None else list(components)
    # The means and their binarised draws, float32, on the device and again on the CPU.
    draws = n * (1 if components is None else max(1, len(components)))
    device = run.dataset.test.x.device
    check_fits(4 * draws * run.args["data_dim"] * 4, "n", device, " for the samples")
    if components is not None:
        means = torch.cat([run.model.generate(n, component=k) for k in components])
    else:
        weights = aggregated_posterior(run) if categories == "posterior" else None
        means = run.model.generate(n, weights=weights)
    binarized = torch.bernoulli(means) if run.args["likelihood"] == "bernoulli" else None
    return means.cpu(), None if binarized is None else binarized.cpu()


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_json(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write JSON atomically (temporary file + rename).

    Non-finite numbers become ``null`` so any JSON reader accepts the file; for example the
    Pareto k is not estimable (infinite) with fewer than about 25 importance samples.
    """
    payload = _finite_or_none(payload)
    text = json.dumps(payload, indent=2, allow_nan=False) + "\n"
    return write_atomically(path, lambda f: f.write(text), mode="w")


# What ties a metrics.json to its run: evaluate keeps a file's other entries only when these match.
RUN_IDENTITY = ("model", "dataset", "seed", "split_seed")


def read_metrics(path: str | os.PathLike, run: Run) -> tuple[dict[str, Any], str]:
    """The entries of ``path`` (a run's ``metrics.json``) if they belong to ``run``.

    Returns:
        ``(metrics, "")``, or ``({}, why)`` when the file is missing (``why`` empty then), is
        not a JSON object, or was written for another run: such a file is rebuilt from the
        checkpoint rather than trusted.
    """
    path = Path(path)
    if not path.exists():
        return {}, ""
    try:
        metrics = json.loads(path.read_bytes())
    except (OSError, ValueError) as e:
        return {}, f"{path} is not readable JSON ({type(e).__name__})"
    if not isinstance(metrics, dict):
        return {}, f"{path} holds a JSON {type(metrics).__name__}, not an object"
    expected = {"model": run.name, **{k: run.args.get(k) for k in RUN_IDENTITY[1:]}}
    foreign = [k for k in RUN_IDENTITY if metrics.get(k) != expected[k]]
    if foreign:
        return {}, f"{path} belongs to another run (its {', '.join(foreign)} differ)"
    return metrics, ""


def skipped_features(run: Run) -> dict[str, str]:
    """What the run's report leaves out for want of an optional method, and why
    (:func:`pyromix.protocol.capabilities`); only features that would apply to its data."""
    image = run.dataset.image_shape is not None
    relevant = {
        "samples": True,
        "latents": True,
        "clusters": True,
        "reconstructions": image,
        "manifold": image and run.args.get("latent_dim") == 2,
    }
    reasons = capabilities(run.model, run.guide)
    if reasons["latents"] is None and len(run.dataset.test) < 2 and run.args.get("latent_dim") != 2:
        reasons["latents"] = (
            f"the test split has {len(run.dataset.test)} point; projecting latents on their "
            "principal components needs at least 2"
        )
    return {f: reasons[f] for f, applies in relevant.items() if applies and reasons[f] is not None}


def _plot_samples(run: Run, path: Path, n: int, *, by_component: bool) -> Path:
    """samples.png: one row per cluster or prior component (first 10) for image data."""
    shape = run.dataset.image_shape
    clusters = getattr(run.model, "num_clusters", None)
    components = clusters or getattr(run.model, "num_components", None)
    row_labels = None
    if by_component and shape is not None:
        rows = min(components, MAX_SAMPLE_ROWS)
        per_row = max(1, min(16, n // rows))
        means, binarized = generate(run, per_row, components=range(rows))
        row_labels = [f"{'y' if clusters else 'component'}={k}" for k in range(rows)]
    else:
        means, binarized = generate(run, n)
    return plots.plot_samples(
        means,
        path,
        image_shape=shape,
        binarized=binarized if shape else None,  # plotted for images only
        data=None if shape else run.dataset.test.x.cpu(),
        row_labels=row_labels,
        title=f"{run.name} samples",
    )


def write_report(
    run: Run, metrics: dict[str, Any], out: str | os.PathLike, *, n: int = 64
) -> list[Path]:
    """Write ``metrics.json``, ``curves.png`` and, where the model supports them
    (:func:`pyromix.protocol.capabilities`) and they apply, ``samples.png``,
    ``reconstructions.png``, ``latents.png`` and ``manifold.png`` (2-D latent, image data)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    shape = run.dataset.image_shape
    pyro.set_rng_seed(run.args["seed"])
    can = {f: reason is None for f, reason in capabilities(run.model, run.guide).items()}
    test = run.dataset.test
    written = [
        write_json(out / METRICS, metrics),
        plots.plot_curves(
            {"train_loss": run.history.train_loss, "val_loss": run.history.val_loss},
            out / "curves.png",
            title=f"{run.name}: negative objective, nats per data point",
        ),
    ]
    if can["samples"]:
        by_component = can["component_samples"]
        written.append(_plot_samples(run, out / "samples.png", n, by_component=by_component))
    with torch.no_grad():
        z = run.guide.latent_mean(test.x) if hasattr(run.guide, "latent_mean") else None
        if shape is not None and can["reconstructions"]:
            recon = reconstruct(run, test.x)
            written.append(
                plots.plot_reconstructions(
                    test.x.cpu(), recon.cpu(), shape, out / "reconstructions.png"
                )
            )
        if z is not None and "latents" not in metrics.get("skipped", {}):
            labels = None if test.y is None else test.y.cpu()
            written.append(plots.plot_latents(z.cpu(), out / "latents.png", labels=labels))
        sees_c = getattr(run.model, "decoder_sees_y", False)
        two_d = run.args.get("latent_dim") == 2 and can["manifold"]
        if shape is not None and two_d and not sees_c:
            device = next(run.model.parameters()).device
            # a model whose decoder reads more than the 2-D latent says how to decode it
            decode = getattr(run.model, "decode_manifold", run.model.likelihood.mean)
            written.append(
                plots.plot_manifold(
                    decode,
                    out / "manifold.png",
                    image_shape=shape,
                    device=device,
                )
            )
    for hook in run.hooks:  # what a recipe's training steps recorded, e.g. a GAN's curves
        if hasattr(hook, "report"):
            written += hook.report(out, shape, title=run.name)
    diagnostics = plot_diagnostics(metrics, out / "diagnostics.png", title=run.name)
    return written + ([diagnostics] if diagnostics else [])
