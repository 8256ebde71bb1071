"""Parameters that live in their modules, without switching Pyro's global setting.

Pyro keeps a ``PyroModule``'s parameters in its global param store, under names such as
``decoder.weight`` that a model and a guide (or two models) share, unless
``pyro.settings.set(module_local_params=True)`` is on; then each module holds its own, which is
what a torch optimiser over ``module.parameters()`` (:func:`pyromix.train.fit`) and checkpoints
need. ``PyroModule`` reads that setting on every attribute access during a call, so pyromix turns
it on only where its own code runs programs, and leaves the user's code as Pyro made it:

- :class:`LocalModule`, the base of pyromix's models and guides, keeps its parameters local
  whatever the setting, also inside a user's own SVI loop: each call runs with the setting on,
  and its parameters carry the ``unconstrained`` reference that ``SVI`` reads, as the values of
  Pyro's param store do, so ``pyro.optim`` optimisers update the module's own parameters;
- :func:`keeps_params_local` scopes the setting around pyromix's entry points that run the
  user's programs (``fit``, the evaluation functions), so a user's ``PyroModule`` trained there
  keeps its parameters too.

``import pyromix`` changes no setting. This relies on one Pyro internal: a ``PyroModule``'s
call context (``_pyro_context``) holds a local store only if it was made while the setting was
on, so :func:`local_params` gives one to contexts made without it.
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from typing import Any, Callable, Iterator

import pyro
from pyro.nn import PyroModule
from torch import nn

__all__ = ["LocalModule", "local_params", "keeps_params_local"]

def _modules(program: Any) -> list[nn.Module]:
    """The modules of ``program`` (a module, or a ``functools.partial`` of one)."""
    while isinstance(program, functools.partial):
        program = program.func
    return list(program.modules()) if isinstance(program, nn.Module) else []


@contextlib.contextmanager
def local_params(*programs: Any) -> Iterator[None]:
    """A block in which ``PyroModule`` s keep their parameters local (Pyro's
    ``module_local_params`` on), restored afterwards; ``programs``' modules made while it was off
    get the local store they then need.

    Example:
        >>> with local_params(model, guide):  # doctest: +SKIP
        ...     loss = Trace_ELBO().loss(model, guide, x)
    """
    for program in programs:
        for module in _modules(program):
            context = getattr(module, "_pyro_context", None)
            if context is not None and not hasattr(context, "param_state"):
                context.param_state = {"params": {}, "constraints": {}}
    with pyro.settings.context(module_local_params=True):
        yield


def keeps_params_local(function: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``function(model, guide, ...)`` inside :func:`local_params` of model and guide."""

    @functools.wraps(function)
    def local(*args: Any, **kwargs: Any) -> Any:
        programs = [*args[:2], kwargs.get("model"), kwargs.get("guide")]
        with local_params(*programs):
            return function(*args, **kwargs)

    return local


class LocalModule(PyroModule):
    """A ``PyroModule`` whose parameters stay in it whatever Pyro's ``module_local_params``
    setting: pyromix's models and guides. Under the setting (inside pyromix's entry points) it
    is a plain ``PyroModule``.

    Example:
        >>> class Model(LocalModule):  # doctest: +SKIP
        ...     def forward(self, x): ...
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if pyro.settings.get("module_local_params"):
            return super().__call__(*args, **kwargs)
        for parameter in self.parameters():
            if "unconstrained" not in parameter.__dict__:
                parameter.unconstrained = weakref.ref(parameter)
        with local_params(self):
            return super().__call__(*args, **kwargs)
