"""Prepare a run: check the arguments against the recipe's schema, load the data, build the
untrained model and guide; everything that can be refused is refused here, before training."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import pyro

from ..data import Dataset, load_dataset
from ..evaluable import PREDICTIVE, check_evaluable, validate_as_trained
from ..identity import is_data_file, locate_data, record_data
from ..labels import accepts_labels
from ..likelihoods import init_from_data_
from ..likelihoods.choice import resolve_likelihood
from ..recipes import COMMON_DEFAULTS, get_recipe
from ..recipes.arguments import recipe_schema, resolve_arguments
from ..recipes.registry import build_programs
from ..resources import check_training_fits
from ..rundir import CHECKPOINT
from ..schema import validate
from ..train import History, resolve_device
from .run import RESUMABLE, Run
from .store import load_run_checkpoint

__all__ = ["DATA_SOURCE", "DATASET_DEFAULTS", "prepare_recipe"]

# Where the data comes from: arguments of the run rather than of its recipe.
DATA_SOURCE = {"data": "digits", "labels": None, "data_dir": None}

# Per-dataset defaults from the papers: Takahashi et al. (2019) uses a 2-D latent on OneHot.
DATASET_DEFAULTS = {"onehot": {"latent_dim": 2}}


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
    schema = recipe_schema(recipe)
    defaults = {
        **COMMON_DEFAULTS,
        **DATA_SOURCE,
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
    validate(schema, args)
    if recipe.check is not None:
        recipe.check(args)
    if not recipe.kl_weighted and (args["warmup"] or args["beta"] != 1):
        raise ValueError(
            f"warmup/beta: the {name} objective has no KL term to weight; leave them at 0/1"
        )
    args["device"] = str(resolve_device(device))
    dataset = _load_data(args, data if args["data"] == "array" else args["data"], labels)
    if args["arch"] == "conv" and dataset.image_shape is None:
        raise ValueError("arch: 'conv' needs image data (H, W); this dataset has none")
    args.update(data_dim=dataset.data_dim, image_shape=dataset.image_shape, dataset=dataset.name)
    resolve_arguments(recipe, args, dataset)  # what depends on the data: clusters, levels
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
