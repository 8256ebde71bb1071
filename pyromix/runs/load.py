"""Rebuild a trained run from its directory: the recipe from its recorded origin, the data
from its recorded files, the weights ``fit`` returned."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..identity import locate_data
from ..recipes import resolve_recipe
from ..recipes.registry import build_programs
from ..rundir import CHECKPOINT
from ..train import History, check_same_parameters, resolve_device
from .prepare import _load_data
from .run import Run
from .store import load_run_checkpoint

__all__ = ["load_run"]


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
