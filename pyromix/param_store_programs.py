"""Plain Pyro programs, functions whose parameters are ``pyro.param`` sites in Pyro's param
store, as torch modules, so that :func:`pyromix.train.fit` trains, checkpoints and restores them
exactly as it does a ``PyroModule``.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pyro
import pyro.poutine as poutine
import torch
from pyro.infer import ELBO
from torch import nn

from .data import Dataset

__all__ = ["ParamStoreProgram", "as_modules"]


class ParamStoreProgram(nn.Module):
    """A plain Pyro program as a module: calling it calls the program; its parameters are the
    unconstrained param-store tensors of the ``pyro.param`` sites it uses (the very tensors
    ``pyro.param`` returns, so an optimiser over them trains the program); its state dict holds
    their values.

    Arguments:
        program: the Pyro program (a function of the batch).
        names: its ``pyro.param`` sites, created in the store already.
    """

    def __init__(self, program: Callable[..., Any], names: list[str]) -> None:
        super().__init__()
        self.program, self.names = program, list(names)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.program(*args, **kwargs)

    def parameters(self, recurse: bool = True) -> Iterator[torch.Tensor]:
        store = pyro.get_param_store()
        return iter([store[name].unconstrained() for name in self.names])

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        return {name: p.detach().clone() for name, p in zip(self.names, self.parameters())}

    def load_state_dict(self, state: dict[str, torch.Tensor], strict: bool = True, assign=False):
        with torch.no_grad():  # in place: the optimiser keeps the same tensors
            for name, p in zip(self.names, self.parameters()):
                p.copy_(state[name])


def as_modules(
    objective: ELBO, model: Callable, guide: Callable, data: Dataset, batch_size: int
) -> tuple[nn.Module, nn.Module]:
    """``model`` and ``guide`` as modules: each module as it is, each plain program as a
    :class:`ParamStoreProgram` over the ``pyro.param`` sites it uses in one loss evaluation on
    a training batch (the random state is left as it was)."""
    if isinstance(model, nn.Module) and isinstance(guide, nn.Module):
        return model, guide
    first = next(iter(data.train_batches(batch_size, torch.Generator(), labeled=True)))
    args, kwargs = first.call()
    names: dict[str, list[str]] = {"model": [], "guide": []}

    def recorded(role: str, program: Callable) -> Callable:
        def run(*a: Any, **k: Any) -> Any:
            with poutine.trace(param_only=True) as trace:
                result = program(*a, **k)
            names[role] += [n for n in trace.trace.nodes if n not in names[role]]
            return result

        return run

    with torch.random.fork_rng(), pyro.validation_enabled(False):
        objective.loss(recorded("model", model), recorded("guide", guide), *args, **kwargs)
    return tuple(
        program if isinstance(program, nn.Module) else ParamStoreProgram(program, names[role])
        for role, program in (("model", model), ("guide", guide))
    )
