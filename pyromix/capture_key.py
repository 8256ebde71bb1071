"""The key of a captured step: what of its arguments and of the programs' state a graph is
valid for (:mod:`pyromix.capture`)."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["Watch", "argument_key"]

_PLAIN = (bool, int, float, str, type(None))
_PLAIN_TYPES = frozenset((*_PLAIN, tuple))


def _plain(value: Any) -> bool:
    return isinstance(value, _PLAIN) or (
        isinstance(value, tuple) and all(isinstance(v, _PLAIN) for v in value)
    )


class Watch:
    """What of an object's own state a Python program can branch on: its plain attributes by
    value, its tensors (parameters, buffers, plain attributes) and child modules by identity.
    Caches a forward pass writes (Pyro transforms' ``_cached_*``) are results, not state, and
    are left out.

    The names to read are listed once and again whenever the object gains or loses an attribute
    or a listed value stops being plain, so a step's key costs a few C-level reads per object.
    """

    def __init__(self, obj: Any) -> None:
        self.attributes = vars(obj)
        self._list()

    def _list(self) -> None:
        items = [(n, v) for n, v in self.attributes.items() if not n.startswith("_cached")]
        self.size = len(self.attributes)
        self.plain = tuple(n for n, v in items if _plain(v))
        self.tensors = tuple(n for n, v in items if isinstance(v, torch.Tensor))
        self.tables = tuple(
            v
            for n, v in items
            if n in ("_parameters", "_buffers", "_modules") and isinstance(v, dict)
        )

    def key(self) -> tuple:
        attributes = self.attributes
        if len(attributes) != self.size:
            self._list()
        values = tuple(attributes[n] for n in self.plain)
        if not all(map(_PLAIN_TYPES.__contains__, map(type, values))):
            self._list()
            return self.key()
        tensors = tuple(id(attributes[n]) for n in self.tensors)
        return values, tensors, tuple(tuple(map(id, t.values())) for t in self.tables)


def argument_key(leaf: Any) -> Any:
    if isinstance(leaf, torch.Tensor):
        return (tuple(leaf.shape), leaf.dtype, leaf.device, leaf.requires_grad)
    return leaf if _plain(leaf) else id(leaf)
