"""The dataset registry: one name -> loader table that :func:`load_dataset`, the CLI's ``--data``
and ``pyromix list`` read.

Shipped datasets and a user's register the same way, with :func:`register_dataset`, as recipes
do (:func:`pyromix.register_recipe`): a module that registers a dataset is a plugin, made
available by importing it (``pyromix fit MODEL --data NAME --plugin MODULE``, a recipe file
``FILE.py:NAME`` that registers it too, or any ``import`` before :func:`load_dataset`). Each
entry records where it came from (its *origin*, as recipes do): ``{"kind": "builtin", ...}``
for the shipped ones, ``{"kind": "module", "module": ..., "path": ...}`` for the rest.
"""

from __future__ import annotations

import difflib
import inspect
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

from .containers import DataError

__all__ = [
    "DATASETS",
    "register_dataset",
    "unregister_dataset",
    "registered_dataset",
    "dataset_origin",
    "unknown_dataset",
    "call_loader",
    "LOADER_ARGUMENTS",
]

#: The keyword arguments :func:`load_dataset` offers a loader; it is given those it names.
LOADER_ARGUMENTS = ("seed", "rng", "data_dir", "val_fraction", "test_fraction")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.+-]*$")
_FILE_SUFFIXES = (".npy", ".npz", ".csv")  # a name ending so would read as a user file


@dataclass(frozen=True)
class _Entry:
    loader: Callable[..., Any]
    description: str
    origin: dict[str, Any] = field(default_factory=dict)


_ENTRIES: dict[str, _Entry] = {}
#: Every registered dataset's name and one-line description, in registration order.
DATASETS: dict[str, str] = {}


def register_dataset(name: str, loader: Callable[..., Any], *, description: str = "") -> Callable:
    """Register ``loader`` as the dataset ``name`` for :func:`load_dataset` and ``--data NAME``.

    The loader is called with those of the keyword arguments ``seed`` (the split seed),
    ``rng`` (a NumPy ``Generator`` seeded by it), ``data_dir``, ``val_fraction`` and
    ``test_fraction`` that its signature names, and returns the points: an array or tensor
    ``x`` of shape ``(N, D)`` or ``(N, H, W)`` (images), or a pair ``(x, y)`` with integer labels
    (-1 where unknown). pyromix checks them as it checks a user's file and splits them by the
    two fractions, seeded. (The shipped loaders return a ``pyromix.data.source.Source``
    instead, with their papers' own splits.)

    Registering a name again replaces the entry (re-running a notebook cell), except for the
    shipped datasets, which cannot be replaced.

    Arguments:
        name: lower-case letters, digits and ``_ . + -``, starting with a letter or digit, not
            ending in a data file's suffix.
        loader: the callable above.
        description: one line for ``pyromix list``.

    Returns:
        ``loader``, so the call can decorate a definition.

    Example:
        >>> import numpy as np
        >>> def squares(rng):
        ...     x = rng.random((50, 3))
        ...     return x, (x[:, 0] > 0.5).astype(int)
        >>> _ = register_dataset("squares", squares, description="50 points in the unit cube")
        >>> from pyromix.data import load_dataset
        >>> ds = load_dataset("squares", val_fraction=0.2, test_fraction=0.2)
        >>> len(ds.train), len(ds.val), len(ds.test), ds.num_classes
        (30, 10, 10, 2)
        >>> unregister_dataset("squares")
    """
    if not isinstance(name, str) or not _NAME.match(name) or name.endswith(_FILE_SUFFIXES):
        raise ValueError(
            "name: expected lower-case letters, digits and _.+- starting with a letter or digit, "
            f"not ending in {'/'.join(_FILE_SUFFIXES)}; got {name!r}"
        )
    if not callable(loader):
        raise ValueError(f"loader: expected a callable returning the data, got {type(loader).__name__}")
    if not isinstance(description, str):
        raise ValueError(f"description: expected a string, got {type(description).__name__}")
    origin = _caller_origin()
    shipped = name in _ENTRIES and _ENTRIES[name].origin["kind"] == "builtin"
    if shipped and _ENTRIES[name].loader is not loader:
        raise ValueError(f"name: {name!r} is a shipped dataset; register yours under another name")
    _ENTRIES[name] = _Entry(loader, description or name, origin)
    DATASETS[name] = description or name
    return loader


def _caller_origin() -> dict[str, Any]:
    frame = sys._getframe(2)  # the caller of register_dataset
    module = frame.f_globals.get("__name__", "__main__")
    if module.startswith(__package__ + ".") and module != __name__:  # not this one's doctest
        return {"kind": "builtin", "module": module}
    return {"kind": "module", "module": module, "path": frame.f_globals.get("__file__")}


def unregister_dataset(name: str) -> None:
    """Remove a dataset registered by :func:`register_dataset` (not a shipped one)."""
    if dataset_origin(name)["kind"] == "builtin":
        raise ValueError(f"name: {name!r} is a shipped dataset and cannot be removed")
    del _ENTRIES[name], DATASETS[name]


def dataset_origin(name: str) -> dict[str, Any]:
    """Where the registered dataset ``name`` came from (see the module docstring)."""
    if name not in _ENTRIES:
        raise unknown_dataset(name)
    return dict(_ENTRIES[name].origin)


def registered_dataset(data: object) -> tuple[str, Callable[..., Any]] | None:
    """``(name, loader)`` when ``data`` names a registered dataset (in any case), else None."""
    if not isinstance(data, str):
        return None
    name = data if data in _ENTRIES else data.lower()
    return (name, _ENTRIES[name].loader) if name in _ENTRIES else None


def call_loader(name: str, loader: Callable[..., Any], offered: dict[str, Any]) -> Any:
    """``loader`` called with the arguments of ``offered`` that its signature names."""
    try:
        parameters = inspect.signature(loader).parameters
    except (TypeError, ValueError):
        parameters = {}
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    return loader(**{k: v for k, v in offered.items() if takes_all or k in parameters})


def unknown_dataset(value: object) -> DataError:
    """The error for a name that is neither registered nor a data file, with a close match."""
    text = str(value)
    close = difflib.get_close_matches(text.lower(), list(_ENTRIES), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return DataError(
        f"data: unknown dataset {text!r}; {hint}expected one of {', '.join(_ENTRIES)}, or a path "
        "to a .npy, .npz or .csv file (a dataset of your own: register_dataset in a module, then "
        "--plugin MODULE)"
    )
