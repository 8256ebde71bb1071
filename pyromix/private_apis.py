"""The private torch and Pyro APIs that captured steps rely on, in one place.

:mod:`pyromix.capture` records a step with ``make_fx`` (and its private option
``_error_on_data_dependent_ops``), records faster under one ``FakeTensorMode`` held by
``torch._guards``' tracing context, flattens arguments with ``torch.utils._pytree``, keeps random
operations by their ``torch._ops.OpOverload`` tags, and takes ``TraceGraph_ELBO``'s surrogate loss
from its private ``_loss_and_surrogate_loss``. None of these is promised to stay, so they are
imported here only, and only on the torch versions this is tested with (:data:`TESTED_TORCH`).
Anywhere else, or when an import fails, :func:`unavailable` says why, captured steps switch
themselves off (the run is eager, with the same numbers), and one warning per process says so.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import torch

__all__ = [
    "TESTED_TORCH",
    "unavailable",
    "warn_unavailable",
    "record",
    "tree_flatten",
    "tree_unflatten",
    "is_random",
    "surrogate_loss",
]

TESTED_TORCH = (2, 13)
"""The torch release (major, minor) captured steps are tested with; ``pyproject.toml`` says the
same. Other releases install and train, eagerly."""


def _version(text: str) -> tuple[int, int]:
    major, minor = text.split("+")[0].split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


try:
    from torch._guards import TracingContext, tracing
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.proxy_tensor import make_fx
    from torch.utils._pytree import tree_flatten, tree_unflatten

    _OpOverload = torch._ops.OpOverload
    _SEEDED = torch.Tag.nondeterministic_seeded
    _MISSING = ""
except (ImportError, AttributeError) as error:  # pragma: no cover - another torch
    _MISSING = f"{type(error).__name__}: {error}"

    def tree_flatten(tree):  # only for a readable failure: capture is off
        raise RuntimeError(_MISSING)

    tree_unflatten = tree_flatten

_WARNED = False


def unavailable() -> str:
    """Why captured steps cannot run with this torch, or "" when they can."""
    if _version(torch.__version__) != TESTED_TORCH:
        tested = ".".join(map(str, TESTED_TORCH))
        return f"torch {torch.__version__} is not the tested {tested}.x: captured steps are off"
    if _MISSING:
        return f"torch's private recording APIs are missing ({_MISSING}): captured steps are off"
    return ""


def warn_unavailable(reason: str) -> None:
    """Warn once per process that capture is off and why; the run goes on eagerly."""
    global _WARNED
    if not _WARNED:
        _WARNED = True
        warnings.warn(f"{reason}; steps run eagerly, with the same results", stacklevel=3)


def record(step: Callable, inputs: list[torch.Tensor]) -> torch.fx.GraphModule:
    """The ATen graph of ``step(*inputs)``, its Python run once on real tensors.

    Tensors the step reads but is not given (the parameters) stay the tensors themselves, so
    later updates reach the graph. A value the step reads from a tensor (``.item()``) is baked in,
    which is why every graph is checked against eager steps. Every value is described by one
    fake-tensor mode instead of a new one each: the same graph, recorded 2-3 times faster.
    """
    with tracing(TracingContext(FakeTensorMode(allow_fallback_kernels=True))):
        return make_fx(step, _error_on_data_dependent_ops=False)(*inputs)


def is_random(node: torch.fx.Node) -> bool:
    """Whether ``node`` draws random numbers (dropping it would shift every later draw)."""
    target = node.target
    return isinstance(target, _OpOverload) and _SEEDED in target.tags


def surrogate_loss(objective: Any) -> Callable | None:
    """``TraceGraph_ELBO``'s ``(model, guide, args, kwargs) -> (elbo, surrogate loss)``."""
    method = getattr(objective, "_loss_and_surrogate_loss", None)
    return method if callable(method) else None
