"""What a run directory stores: the checkpoint's recipe and arguments, and JSON files written
atomically and read back only when they belong to the run."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from ..rundir import write_atomically
from ..train import load_checkpoint
from .run import RUN_ARGS_KEYS, Run

__all__ = ["load_run_checkpoint", "write_json", "RUN_IDENTITY", "read_metrics"]


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
