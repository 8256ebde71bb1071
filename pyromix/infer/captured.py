"""Captured steps as an objective: any ELBO, its steps replayed from recorded graphs.

Pyro offers ``JitTrace_ELBO`` beside ``Trace_ELBO``; :class:`CapturedELBO` wraps any ELBO the same
way, with :class:`pyromix.capture.StepCapture` (the core :func:`pyromix.train.fit` uses too)
doing the work: its ``loss_and_grads`` runs eagerly until the programs' structure has held for
``after`` steps, then replays the step's recorded tensor operations, checked against an eager
step on the first replay and every ``recheck_every`` replays after.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import pyro.infer
from pyro.infer import ELBO
from torch import nn

from ..capture import CAPTURE_AFTER, CAPTURE_BUDGET, MAX_GRAPHS, StepCapture

__all__ = ["CapturedELBO"]

_PAIRS = 4  # (model, guide) pairs whose steps are kept


class CapturedELBO(ELBO):
    """``elbo`` with captured steps, for ``pyro.infer.SVI`` or a hand-written loop.

    ``loss_and_grads`` is captured; ``loss`` (no gradients) runs ``elbo``'s, and
    ``differentiable_loss`` is ``elbo``'s where it has one (a graph returns gradients, not an
    autograd graph). The numbers are ``elbo``'s to float rounding, and a program whose graph
    disagrees with an eager step goes on eagerly (see :mod:`pyromix.capture` for what the checks
    cannot see). Its steps run without Pyro's argument checks, as :func:`pyromix.train.fit`'s
    do after the first: run a first step with ``elbo`` itself to have them.

    Arguments:
        elbo: a Pyro ELBO (see :class:`~pyromix.capture.StepCapture` for those captured;
            others run eagerly).
        after: eager steps of one structure before it is captured; ``None`` never captures.
        recheck_every: replays of a graph between two checks against an eager step (default
            :data:`~pyromix.capture.RECHECK_EVERY`).
        max_graphs, budget: as :class:`~pyromix.capture.StepCapture`'s.
        modules: the ``nn.Module`` s behind model and guide, when these are not modules
            themselves (e.g. wrapped in a handler); their attributes join the key and their
            parameters get the gradients.
        state: other objects whose plain attributes join the key.

    Attributes:
        steps: the :class:`~pyromix.capture.StepCapture` of each ``(model, guide)`` pair seen,
            with its counts (``graphs``, ``rechecks``) and ``off``, why it stopped capturing.

    Example:
        >>> svi = SVI(model, guide, pyro.optim.Adam({"lr": 1e-3}),
        ...           CapturedELBO(Trace_ELBO()))  # doctest: +SKIP
        >>> for x in batches:  # doctest: +SKIP
        ...     svi.step(x)  # eager for 20 steps, then replayed
    """

    def __init__(
        self,
        elbo: pyro.infer.ELBO,
        *,
        after: int | None = CAPTURE_AFTER,
        recheck_every: int | None = None,
        max_graphs: int = MAX_GRAPHS,
        budget: float = CAPTURE_BUDGET,
        modules: Iterable[nn.Module] | None = None,
        state: Iterable[Any] = (),
    ) -> None:
        if not isinstance(elbo, ELBO):
            raise ValueError(f"elbo: expected a pyro.infer.ELBO, got {type(elbo).__name__}")
        super().__init__(
            num_particles=elbo.num_particles,
            max_plate_nesting=elbo.max_plate_nesting,
            vectorize_particles=elbo.vectorize_particles,
        )
        self.elbo = elbo
        self.options = dict(
            after=after, recheck_every=recheck_every, max_graphs=max_graphs, budget=budget
        )
        self.modules = None if modules is None else list(modules)
        self.state = tuple(state)
        self.steps: dict[tuple[int, int], StepCapture] = {}
        StepCapture(elbo, None, None, modules=(), **self.options)  # refuses bad options now

    def __getattr__(self, name: str) -> Any:
        if name == "differentiable_loss":  # only where the wrapped ELBO has one
            return getattr(self.__dict__["elbo"], name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def step_of(self, model: Callable, guide: Callable) -> StepCapture:
        """The :class:`~pyromix.capture.StepCapture` of ``model`` and ``guide``."""
        key = (id(model), id(guide))
        step = self.steps.get(key)
        if step is None or step.model is not model or step.guide is not guide:
            if len(self.steps) >= _PAIRS:  # programs made anew for every step: keep a few
                del self.steps[next(iter(self.steps))]
            step = self.steps[key] = StepCapture(
                self.elbo, model, guide, modules=self.modules, state=self.state, **self.options
            )
        return step

    def _get_trace(self, model, guide, args, kwargs):
        return self.elbo._get_trace(model, guide, args, kwargs)  # the wrapped ELBO's traces

    def loss(self, model: Callable, guide: Callable, *args: Any, **kwargs: Any) -> float:
        """``elbo.loss``: the loss as a float, eagerly."""
        return self.elbo.loss(model, guide, *args, **kwargs)

    def loss_and_grads(self, model: Callable, guide: Callable, *args: Any, **kwargs: Any) -> float:
        """The loss as a float, its gradients accumulated into the parameters' ``.grad``, from
        a captured graph once there is one for this structure."""
        return self.step_of(model, guide)(*args, **kwargs)
