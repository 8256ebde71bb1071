"""Captured training steps: a Pyro step's Python runs once, its tensor operations are replayed.

On a small network most of a Pyro step is Python: effect handlers, trace bookkeeping,
distribution objects and the ELBO's loops, each the same from step to step while the program
keeps its structure (the same sample sites, shapes and settings). :class:`StepCapture` records
the ATen operations of one whole step (forward pass, loss and backward pass) into a graph with
``torch.fx``'s ``make_fx``, checks that graph against an eager step on the same random
draws, and from then on runs the graph instead of the program, checking it again every
:data:`RECHECK_EVERY` replays on the batch at hand. The graph

- draws fresh noise from torch's generator on every call, in the order the eager step draws it,
  so a captured run makes the same draws as an eager one;
- computes the eager step's operations, so its loss and gradients are the eager ones to float
  rounding (to the last bit unless a sum is reduced in another order);
- reads the parameters themselves, not copies, so optimiser updates reach it;
- returns the loss and the gradients, which are accumulated into ``.grad`` as
  ``ELBO.loss_and_grads`` does.

Pyro's own ``JitTrace_ELBO`` records the same way (``torch.jit``, now deprecated) but fails on
parameters held in their modules (pyromix's ``module_local_params``) and bakes schedule values
in for good; ``torch.compile`` breaks its graph at every ``.item()`` of Pyro's ELBOs and spends
~30 s compiling a VAE to a slower step. :class:`pyromix.infer.CapturedELBO` offers the same
capture as an objective for Pyro's own ``SVI``.

**When a graph is reused.** Each step computes a key: the shapes, dtypes and devices of the
arguments; every plain attribute (numbers, strings, flags such as ``training`` or a schedule's
``std_min``) and the identity of every tensor and child module of every submodule of the
programs; the plain attributes of the objective and of other ``state`` objects (the KL weight).
A key is captured
once it has run ``after`` eager steps, so values that change every epoch (KL warm-up, std
annealing) stay eager until they settle, and short runs never pay for a capture. At most
:data:`MAX_GRAPHS` graphs are kept (the least recently used goes), and after the first, time
spent capturing stays within :data:`CAPTURE_BUDGET` of the time spent in steps.

**What a key cannot see** (a program branching on data values or on global state, a shape
that depends on data) shows only when a check meets it: a graph that disagrees with the eager
step, or that fails when replayed, is dropped and the run goes on eagerly, with the reason in
``StepCapture.off``. The first check is on the batch after the capture; later ones come every
:data:`RECHECK_EVERY` replays, so a branch that most batches do not take may be replayed wrongly
until a re-check meets it (``replayed_wrongly`` then says so, and ``strict`` raises
:class:`CaptureDisagreed`, on which :func:`pyromix.train.fit` restarts its run eagerly). A
branch that no checked batch takes is never seen: turn capture off
(``fit(capture_after=None)``, ``--no-capture``) for such programs. Python side effects of a
program (counters, prints, appended lists) do not happen on replayed steps.

The private torch APIs this relies on live in :mod:`pyromix.private_apis`; where they are
missing, or torch is not the tested release, every step is eager and one warning says so.

Example:
    >>> step = StepCapture(Trace_ELBO(), model, guide, after=20)  # doctest: +SKIP
    >>> loss = step(x)  # eager for 20 steps with this key, then captured  # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
import warnings
import weakref
from collections import Counter, OrderedDict
from typing import Any, Callable, Iterable, Sequence

import pyro
import torch
from pyro import poutine
from pyro.infer import RenyiELBO, TraceGraph_ELBO
from pyro.poutine.runtime import am_i_wrapped, effectful
from torch import nn

from . import private_apis
from .capture_graph import drop_no_ops, is_impure
from .capture_key import Watch, argument_key
from .schema import Interval, check_value

__all__ = [
    "StepCapture",
    "CaptureDisagreed",
    "CAPTURE_AFTER",
    "CAPTURE_BUDGET",
    "MAX_GRAPHS",
    "RECHECK_EVERY",
]

CAPTURE_AFTER = 20
"""The default number of eager steps of one structure before it is captured. A structure that
has held this long is likely to hold for the 100 or so steps that repay a capture (0.1-0.5 s on
digits networks, about 1 ms saved per step)."""

MAX_GRAPHS = 4
"""Graphs kept at once (a run needs one per batch size in use, e.g. the full and the last batch);
capturing another drops the one used longest ago."""

CAPTURE_BUDGET = 0.1
"""After the first capture, a new one is made only while the time spent capturing and checking
is at most this share of the time spent in steps, so capture never costs a run more than 10 %
(a run whose settings change every epoch, such as KL warm-up on a large data set, would
otherwise capture again and again)."""

RECHECK_EVERY = 50
"""Replays of a graph between two checks against an eager step (on the batch of that step, on
the same draws). A check costs about one eager step (1.5 replays on digits networks) more than a
replay, so re-checking adds about 3 % to a captured step's time; a branch taken on one batch in
six is met by each check with probability 1/6, so within 1,200 replays (24 checks) with
probability 0.987."""

# A graph must agree with the eager step it replaces: the loss to this relative tolerance (the
# loss is rebuilt from floats taken at capture time, exact to rounding) and every gradient.
LOSS_RTOL, GRAD_RTOL = 1e-5, 1e-5

def _differentiable_loss(objective: Any) -> Callable | None:
    """``(model, guide, *args, **kwargs) -> loss`` with the value of ``objective``'s loss and
    the gradient of its ``loss_and_grads``, or None where there is none."""
    if callable(getattr(objective, "differentiable_loss", None)):
        return objective.differentiable_loss
    surrogate = private_apis.surrogate_loss(objective)
    if isinstance(objective, TraceGraph_ELBO) and surrogate is not None:
        # TraceGraph_ELBO (NVIL's score functions and baselines) backpropagates this surrogate
        def loss(model, guide, *args, **kwargs):
            elbo, surrogate_loss = surrogate(model, guide, args, kwargs)
            return surrogate_loss - surrogate_loss.detach() - elbo.detach()

        return loss
    if _is_iwae_bound(objective):
        # RenyiELBO(alpha=0) is the IWAE bound, whose value and (pathwise) gradient VIMCO's core
        # computes from the same sites; built per call, once the eager steps have set the plates
        from .infer.vimco import VIMCO

        def bound(model, guide, *args, **kwargs):
            vimco = VIMCO(objective.num_particles, max_plate_nesting=objective.max_plate_nesting)
            return vimco.differentiable_loss(model, guide, *args, **kwargs)

        return bound
    return None


def _is_iwae_bound(objective: Any) -> bool:
    return (
        isinstance(objective, RenyiELBO)
        and objective.alpha == 0
        and objective.vectorize_particles
        and objective.num_particles >= 2
    )


def _unconstrained(value: torch.Tensor) -> torch.Tensor:
    # A param site's value is its constrained value; Pyro points it to the tensor it learns
    unconstrained = getattr(value, "unconstrained", None)
    return unconstrained() if callable(unconstrained) else value


def _replayed_param(name: str, parameter: torch.Tensor) -> torch.Tensor:
    if "unconstrained" not in parameter.__dict__:  # as Pyro's param store marks its values
        parameter.unconstrained = weakref.ref(parameter)
    return parameter


# A param statement for a replayed step, seen by the handlers around it (SVI's param capture)
_param = effectful(_replayed_param, type="param")


class CaptureDisagreed(RuntimeError):
    """A re-check found that a graph already replayed disagrees with the eager step: the steps
    replayed since the last check may have had wrong losses and gradients."""


class _Graph:
    """One captured step: ``(loss, gradients of the parameters it reaches)``; ``checked`` once
    it has agreed with an eager step, ``replays`` since its last check."""

    def __init__(self, module: torch.fx.GraphModule, reached: list[bool], tensor_slots):
        self.module, self.reached, self.tensor_slots = module, reached, tensor_slots
        self.checked, self.replays = False, 0
        self.sites: list[tuple[str, torch.Tensor]] = []  # the eager step's param statements

    def __call__(self, leaves: list) -> tuple[torch.Tensor, list[torch.Tensor]]:
        with torch.no_grad():  # the graph computes the gradients itself: nothing to record
            loss, *grads = self.module(*(leaves[i] for i in self.tensor_slots))
        return loss, grads


class StepCapture:
    """A training step, ``loss_and_grads`` of ``objective`` on ``model`` and ``guide``, that
    runs captured graphs once the programs' structure has settled (see the module docstring).

    Arguments:
        objective: a Pyro ELBO with ``differentiable_loss`` whose value is the loss (Trace_ELBO
            and TraceMeanField_ELBO on reparameterised sites, TraceEnum_ELBO, VIMCO), or a
            ``TraceGraph_ELBO``, or ``RenyiELBO`` with ``alpha=0`` and vectorised particles (the
            IWAE bound, through :class:`~pyromix.infer.VIMCO`'s core: the same value, and the
            same gradient to rounding on reparameterised sites); others, and any whose check
            fails, run eagerly.
        model, guide: the programs as the step calls them (e.g. wrapped in the KL weight).
        parameters: the tensors whose gradients a step produces; by default those of
            ``modules``.
        modules: the ``nn.Module`` s behind model and guide, whose attributes join the key
            (default: model and guide themselves when they are modules).
        state: other objects whose plain attributes join the key (the KL weight messenger).
        after: eager steps of one key before it is captured; ``None`` never captures.
        max_graphs: graphs kept at once; the least recently used is dropped for a new one.
        budget: after the first capture, capture only while the time spent capturing is at
            most this share of the time spent in steps.
        recheck_every: replays of a graph between two checks against an eager step (default
            :data:`RECHECK_EVERY`).
        strict: raise :class:`CaptureDisagreed` when a re-check fails (after the eager step has
            run); otherwise warn, and go on eagerly.

    Attributes:
        graphs: graphs captured and checked so far.
        rechecks: re-checks passed so far.
        seconds: time spent capturing and checking them.
        stepping: time spent in steps (capture included).
        off: why capture stopped for good ("" while it may still capture).
        replayed_wrongly: a re-check failed, so steps replayed before it may have been wrong.

    Calling it with the program's arguments accumulates the gradients into ``.grad`` and
    returns the loss as a float.
    """

    def __init__(
        self,
        objective: Any,
        model: Callable,
        guide: Callable,
        *,
        parameters: Sequence[torch.Tensor] | None = None,
        modules: Iterable[nn.Module] | None = None,
        state: Iterable[Any] = (),
        after: int | None = CAPTURE_AFTER,
        max_graphs: int = MAX_GRAPHS,
        budget: float = CAPTURE_BUDGET,
        recheck_every: int | None = None,
        strict: bool = False,
    ) -> None:
        recheck_every = RECHECK_EVERY if recheck_every is None else recheck_every
        check_value("after", after, Interval(int, 0), None)
        check_value("recheck_every", recheck_every, Interval(int, 1))
        self.objective, self.model, self.guide = objective, model, guide
        roots = list(modules) if modules is not None else [
            m for m in (model, guide) if isinstance(m, nn.Module)
        ]
        self._roots, self._state = roots, (objective, *state)
        self._watched: dict[int, nn.Module] = {}
        self._watch()
        if parameters is None:
            parameters = list({id(p): p for m in roots for p in m.parameters()}.values())
        self.parameters = [p for p in parameters if p.requires_grad]
        self.after, self.max_graphs, self.budget = after, max_graphs, budget
        self.recheck_every, self.strict = recheck_every, strict
        self._seen: Counter = Counter()
        self._graphs: OrderedDict[tuple, _Graph] = OrderedDict()
        self.graphs, self.rechecks, self.seconds, self._captures, self.stepping = 0, 0, 0.0, 0, 0.0
        self.replayed_wrongly = False
        self.off = "" if after is not None else "capture is off"
        self._loss = _differentiable_loss(objective)
        if not self.off and self._loss is None:
            self.off = f"{type(objective).__name__} has no differentiable_loss"
        if not self.off and private_apis.unavailable():
            self.off = private_apis.unavailable()
            private_apis.warn_unavailable(self.off)

    # -- the step ----------------------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> float:
        if self.off:
            return self._eager(args, kwargs)
        started = time.perf_counter()
        try:
            return self._step(args, kwargs)
        finally:
            self.stepping += time.perf_counter() - started

    def _step(self, args, kwargs) -> float:
        leaves, spec = private_apis.tree_flatten((args, kwargs))
        key = (spec, tuple(argument_key(leaf) for leaf in leaves), self._state_key())
        graph = self._graphs.get(key)
        if graph is None:
            if self._watch():  # a step off the graphs: watch submodules assigned since
                key = (spec, key[1], self._state_key())
            self._seen[key] += 1
            within = self.seconds <= self.budget * self.stepping or not self._captures
            if self._seen[key] <= self.after or not within:
                return self._eager(args, kwargs)
            return self._capture(key, leaves, spec, args, kwargs)
        self._graphs.move_to_end(key)
        if not graph.checked or graph.replays >= self.recheck_every:
            return self._check(graph, leaves, args, kwargs)
        graph.replays += 1
        if am_i_wrapped():  # e.g. SVI, which learns what to update from the param statements
            for name, parameter in graph.sites:
                _param(name, parameter, name=name)
        try:
            loss, grads = graph(leaves)
        except RuntimeError as error:  # e.g. a shape that depends on the data
            self._stop(f"a captured graph failed on replay ({str(error).splitlines()[0]})")
            return self._eager(args, kwargs)
        self._accumulate(graph, grads)
        return loss.item()

    def _watch(self) -> bool:
        """Watch every submodule of the programs; True if they were not all watched (the first
        call, or a submodule replaced since)."""
        unique = {id(m): m for root in self._roots for m in root.modules()}
        if unique.keys() == self._watched.keys():
            return False
        self._watched = unique
        self._watches = [Watch(obj) for obj in (*unique.values(), *self._state)]
        return True

    def _state_key(self) -> tuple:
        return tuple(watch.key() for watch in self._watches)

    def _eager(self, args, kwargs) -> float:
        with pyro.validation_enabled(False):
            return self.objective.loss_and_grads(self.model, self.guide, *args, **kwargs)

    def _accumulate(self, graph: _Graph, grads: list[torch.Tensor]) -> None:
        reached = (p for p, r in zip(self.parameters, graph.reached) if r)
        for p, g in zip(reached, grads):
            p.grad = g if p.grad is None else p.grad + g

    def _stop(self, reason: str) -> None:
        self.off, self._graphs = reason, {}

    # -- capture -------------------------------------------------------------------------------

    def _capture(self, key, leaves, spec, args, kwargs) -> float:
        """Record the graph of this step's structure; the step itself runs eagerly."""
        started = time.perf_counter()
        slots = [i for i, leaf in enumerate(leaves) if isinstance(leaf, torch.Tensor)]
        params, reached = self.parameters, []

        def step(*tensors):
            filled = list(leaves)
            for i, t in zip(slots, tensors):
                filled[i] = t
            args, kwargs = private_apis.tree_unflatten(filled, spec)
            with pyro.validation_enabled(False):
                loss = self._loss(self.model, self.guide, *args, **kwargs)
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            reached[:] = [g is not None for g in grads]
            return [loss.detach(), *(g for g in grads if g is not None)]

        try:
            # Pyro's ELBOs take floats of tensors (.item()) for their reports: the graph keeps
            # this step's, which the check holds to the eager step's.
            with self._same_draws():  # recording draws noise: give it back
                module = private_apis.record(step, [leaves[i] for i in slots])
        except Exception as error:  # anything make_fx cannot follow: stay eager
            self._stop(f"capture failed ({type(error).__name__}: {str(error).splitlines()[0]})")
            return self._eager(args, kwargs)
        drop_no_ops(module.graph)
        module.graph.eliminate_dead_code(is_impure_node=is_impure)
        module.recompile()
        if len(self._graphs) >= self.max_graphs:
            self._graphs.popitem(last=False)
        self._graphs[key] = _Graph(module, reached, slots)
        self._captures += 1
        self.seconds += time.perf_counter() - started
        return self._eager(args, kwargs)

    def _check(self, graph: _Graph, leaves, args, kwargs) -> float:
        """The graph's first use, on a batch other than the one it was recorded on, and every
        ``recheck_every`` replays after: it and the eager step run on the same draws, and it is
        kept only if they agree. The eager step is the one used, so the run's random stream
        stays the eager run's."""
        started = time.perf_counter()
        try:
            with self._same_draws():
                replayed, grads = graph(leaves)
        except RuntimeError as error:
            self._stop(f"a captured graph failed on replay ({str(error).splitlines()[0]})")
            return self._eager(args, kwargs)
        before = [p.grad for p in self.parameters]
        for p in self.parameters:
            p.grad = None
        with poutine.trace(param_only=True) as params:
            loss = self._eager(args, kwargs)
        eager = [p.grad for p in self.parameters]
        for p, b, g in zip(self.parameters, before, eager):
            p.grad = g if b is None else (b if g is None else b + g)
        graph.sites = [(n, _unconstrained(site["value"])) for n, site in params.trace.nodes.items()]
        problem = self._outside(graph.sites) or self._disagreement(
            graph, replayed.item(), grads, loss, eager
        )
        self.seconds += time.perf_counter() - started
        if not problem:
            self.rechecks += graph.checked
            self.graphs += not graph.checked
            graph.checked, graph.replays = True, 0
            return loss
        if not graph.checked:
            self._stop(f"a captured graph disagreed with the eager step ({problem})")
            return loss
        self._stop(
            f"a captured graph disagreed with the eager step on a re-check ({problem}), "
            f"after {graph.replays} replays that may have been wrong"
        )
        self.replayed_wrongly = True
        if self.strict:
            raise CaptureDisagreed(self.off)
        warnings.warn(f"{self.off}; the steps from here on are eager", stacklevel=4)
        return loss

    def _outside(self, sites) -> str:
        """The eager step's parameters that the graph does not update (``pyro.param`` statements
        of programs outside ``modules``), named."""
        known = {id(p) for p in self.parameters}
        outside = [name for name, p in sites if id(p) not in known and p.requires_grad]
        return f"parameters outside the modules: {', '.join(outside)}" if outside else ""

    def _same_draws(self):
        """A block whose random draws are undone afterwards (CPU and the CUDA devices used)."""
        cuda = {p.device.index or 0 for p in self.parameters if p.device.type == "cuda"}
        return torch.random.fork_rng(devices=sorted(cuda))

    def _disagreement(self, graph, replayed, grads, loss, eager) -> str:
        if not math.isclose(replayed, loss, rel_tol=LOSS_RTOL, abs_tol=LOSS_RTOL):
            return f"loss {replayed!r} vs {loss!r}"
        reached = [g for g, r in zip(eager, graph.reached) if r]
        if any(g is not None for g, r in zip(eager, graph.reached) if not r):
            return "the eager step reaches parameters the graph does not"
        for g, e in zip(grads, reached):
            if e is None:
                return "the graph reaches parameters the eager step does not"
            # max-norms: a 2-norm of large gradients overflows float32
            error = ((g - e).abs().max() / e.abs().max().clamp_min(1e-30)).item()
            if not error <= GRAD_RTOL:
                return f"gradients differ by {error:.2e} (relative)"
        return ""
