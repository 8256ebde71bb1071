"""The checkpoint format of :func:`~pyromix.train.fit`: written atomically, read with checks,
and the state snapshots it is made of (also the loop's fallback on a non-finite loss)."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from ..distributed import Replicas
from ..rundir import write_atomically
from .history import History

__all__ = [
    "CHECKPOINT_FORMAT",
    "save_checkpoint",
    "load_checkpoint",
    "check_same_parameters",
    "snapshot",
    "restore",
    "resume",
]

CHECKPOINT_FORMAT = "pyromix-checkpoint-1"


def save_checkpoint(
    path: str | os.PathLike,
    *,
    state: dict[str, Any],
    best: dict[str, Any] | None,
    history: History,
    recipe: dict[str, Any] | None,
    restore_best: bool = True,
) -> Path:
    """Write a checkpoint atomically: a temporary file in the same folder, then a rename.

    A crash mid-write leaves the previous checkpoint intact. ``restore_best`` records whose
    weights the run ends with, and ``weights_epoch`` their epoch (1-based): the best epoch's
    (``best``) or the last one's (``state``).
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
        "restore_best": restore_best,
        "weights_epoch": (
            history.best_epoch + 1
            if restore_best and best is not None and history.best_epoch is not None
            else history.epochs
        ),
    }
    write_atomically(path, lambda f: torch.save(payload, f))
    return path


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`fit`, with a clear error for missing or corrupt files.

    Returns:
        dict with ``epoch`` (epochs completed), ``state`` (last epoch: model, guide, optimizer,
        RNG), ``best`` (weights of the best validation epoch, or None), ``history``,
        ``recipe`` and, in checkpoints written since they were added, ``restore_best`` (whether
        the run's weights are ``best``'s) and ``weights_epoch`` (their epoch, 1-based).
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


def snapshot(model, guide, optimizer, hooks) -> dict[str, Any]:
    """A copy of the programs', optimiser's and step hooks' states."""
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


def restore(state, model, guide, optimizer=None, hooks=()) -> None:
    """Put a :func:`snapshot` (or a checkpoint's ``state`` or ``best``) back."""
    model.load_state_dict(state["model"])
    guide.load_state_dict(state["guide"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    for hook, hook_state in zip(hooks, state.get("hooks", [])):
        hook.load_state_dict(hook_state)


def resume(
    checkpoint: str | os.PathLike,
    model: nn.Module,
    guide: nn.Module,
    optimizer: torch.optim.Optimizer,
    hooks: Sequence[Any],
    replicas: Replicas,
    generator: torch.Generator,
) -> tuple[History, dict[str, Any] | None]:
    """Load ``checkpoint`` into the programs, optimiser, hooks and random state.

    Returns:
        The saved history and best weights, to continue from.
    """
    saved = load_checkpoint(checkpoint)
    for role, program in (("model", model), ("guide", guide)):
        check_same_parameters(program, saved["state"][role], checkpoint, f"the {role}")
    try:
        restore(saved["state"], model, guide, optimizer, hooks)
    except (KeyError, TypeError, RuntimeError, ValueError) as e:
        text = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ValueError(
            f"checkpoint: {str(checkpoint)!r} does not fit the model being trained "
            f"({type(e).__name__}: {text})"
        ) from e
    rng = saved["state"]["torch_rng"]
    replicas.set_rng(rng if isinstance(rng, list) else [rng])
    generator.set_state(saved["state"]["generator"])
    return History.from_dict(saved["history"]), saved["best"]
