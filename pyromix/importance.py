r"""Per-point importance weights of a model and its guide, with enumerated sites summed exactly.

The guide is the proposal. For a guide with discrete sites marked for parallel enumeration
(``infer={"enumerate": "parallel"}``, ``config_enumerate``) the proposal is stratified over their
values: every value y gets its own draw ``z_{s,y} ~ q(z | x, y)`` (one draw serves every value
where q(z | x) ignores y, Pyro's broadcasting) and the weight of sample s is
the exact expectation over ``q(y | x)``,

.. math::

    w_s = \sum_y q(y | x) \frac{p(x, y, z_{s,y})}{q(y | x)\, q(z_{s,y} | x, y)}
        = \sum_y \frac{p(x, y, z_{s,y})}{q(z_{s,y} | x, y)},

whose mean over s is unbiased for p(x), as ``TraceEnum_ELBO`` sums its bound over y. Sampled
discrete sites (no ``enumerate`` mark) stay sampled. A latent site outside the data plate (a
global latent theta) is drawn once per sample and shared by all points; its own densities
p(theta) and q(theta) leave the weight, which becomes ``p(x_n, z_s | theta_s) / q(z_s | x_n,
theta_s)``: its mean over s estimates the held-out predictive density
``p(x_n | data) ~ E_{q(theta)} p(x_n | theta)`` (Vehtari, Gelman and Gabry, 2017, eq. 1-4).

References:
    Burda, Grosse and Salakhutdinov (2016), eq. 8. Pyro's ``TraceEnum_ELBO``, ``poutine.enum``,
    ``scale_and_mask`` and ``obs_mask``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import pyro
import pyro.util
import torch
from pyro import poutine
from pyro.distributions.util import scale_and_mask
from pyro.poutine.util import site_is_subsample

from .infer.scale import unweighted
from .labels import Batch
from .local_params import keeps_params_local

__all__ = ["SiteError", "Weights", "importance_weights", "log_importance_weights", "probe_sites"]

PARTICLES = "_importance_particles"


class SiteError(ValueError):
    """A site whose density cannot be split into per-point importance weights."""


@dataclass
class Weights:
    """Importance weights of one chunk of points.

    Attributes:
        log_w: ``log w_s`` per sample and point, shape (S, N), enumerated sites summed.
        elbo: the ELBO terms of the same draws, ``E_{q(y)}[log p - log q]`` per sample and point,
            shape (S, N), enumerated sites summed with their probabilities.
        summed: names of the guide sites summed exactly.
        global_sites: names of the latent sites outside the data plate (predictive estimator).
    """

    log_w: torch.Tensor
    elbo: torch.Tensor
    summed: tuple[str, ...]
    global_sites: tuple[str, ...]


def _traces(model, guide, x, num_samples, y, y_mask, max_plate_nesting, enumerate_sites):
    args, kwargs = Batch(x, y, y_mask).call()
    particles = pyro.plate(PARTICLES, num_samples, dim=-max_plate_nesting - 1)
    proposal = guide
    if enumerate_sites:  # enumeration dims go left of the particles
        proposal = poutine.enum(guide, first_available_dim=-max_plate_nesting - 2)
    with unweighted(), particles:
        guide_trace = poutine.trace(proposal).get_trace(*args, **kwargs)
        replayed = poutine.replay(model, trace=guide_trace)
        model_trace = poutine.trace(replayed).get_trace(*args, **kwargs)
    return model_trace, guide_trace


def _enumerated(site: dict) -> bool:
    return site["infer"].get("_enumerate_dim") is not None


@torch.no_grad()
@keeps_params_local
def probe_sites(
    model: Callable[..., Any],
    guide: Callable[..., Any],
    x: torch.Tensor,
    *,
    y: torch.Tensor | None = None,
    y_mask: torch.Tensor | None = None,
    max_plate_nesting: int = 1,
) -> tuple[dict[str, int], tuple[str, ...]]:
    """One pass of the programs on ``x`` (a point or two suffice): the guide sites that
    enumeration sums, with their numbers of values, and the latent sites outside the data plate.
    The random state is left as it was, so the draws that follow are those of a run without it.
    """
    state = pyro.util.get_rng_state()
    try:
        model_trace, guide_trace = _traces(model, guide, x, 1, y, y_mask, max_plate_nesting, True)
    finally:
        pyro.util.set_rng_state(state)
    summed = {
        name: int(site["value"].shape[0])
        for name, site in guide_trace.nodes.items()
        if site["type"] == "sample" and _enumerated(site)
    }
    n = x.shape[0]
    global_sites = tuple(
        name
        for name, site in model_trace.nodes.items()
        if site["type"] == "sample"
        and not site["is_observed"]
        and not site_is_subsample(site)
        and not _data_dims(site, n, max_plate_nesting + 1)
    )
    return summed, global_sites


def _data_dims(site: dict, n: int, dims: int) -> list[int]:
    frames = site["cond_indep_stack"]
    return [f.dim for f in frames if f.vectorized and f.size == n and f.dim != -dims]


@torch.no_grad()
@keeps_params_local
def importance_weights(
    model: Callable[..., Any],
    guide: Callable[..., Any],
    x: torch.Tensor,
    num_samples: int,
    *,
    y: torch.Tensor | None = None,
    y_mask: torch.Tensor | None = None,
    max_plate_nesting: int = 1,
    enumerate_sites: bool = True,
) -> Weights:
    r"""``log w_s = log p(x, z_s) - log q(z_s | x)`` per point, vectorised over s, enumerated
    sites summed exactly (the module's docstring gives the estimator).

    The guide runs inside a plate of ``num_samples`` particles left of the model's plates (and
    under ``poutine.enum``, whose dims go left of the particles), and the model is replayed on
    its samples. Each site counts as in Pyro's ELBOs: its log-density is multiplied by its mask
    (``poutine.mask``, and the halves of an ``obs_mask`` site) and by the scales the program
    itself sets (``poutine.scale``). Three things do not count: warm-up and beta weights
    (:class:`pyromix.infer.LatentScaleMessenger`, switched off here), the N / B scale of a
    subsampling plate (a weight is per point), and a latent site of the model that the guide does
    not cover: it is drawn from its prior, the proposal, so p / q = 1 (Pyro's ELBOs count its
    log p and warn). Plates nested inside the data plate are summed per point.

    An enumerated site's value y is weighted by its unmasked probability q(y | x), and its masked
    ``log q(y | x)`` enters the weight as any guide site's, so a masked (revealed) y weighs
    ``sum_y q(y) w = w`` and an unmasked one gives the stratified sum above.

    Arguments:
        model, guide: Pyro programs (modules, plain callables or partials), called as
            :mod:`pyromix.labels` says.
        x: data, shape (N, D).
        num_samples: S.
        y, y_mask: revealed labels and their mask, shape (N,), or None.
        max_plate_nesting: plates the model nests (1: the data plate).
        enumerate_sites: sum the guide's enumerated sites (True) or sample them from the guide
            like any other site (False, the estimator that samples y; kept for comparison).

    Returns:
        :class:`Weights`, tensors of shape ``(num_samples, N)``.

    Raises:
        SiteError: naming the site, for an observed site or factor outside the data plate (a
            global factor has no per-point share), an enumerated site inside a plate nested in
            the data plate, or a site with batch dimensions no plate declares.
    """
    model_trace, guide_trace = _traces(
        model, guide, x, num_samples, y, y_mask, max_plate_nesting, enumerate_sites
    )
    dims, n = max_plate_nesting + 1, x.shape[0]
    summed = [
        name for name, s in guide_trace.nodes.items() if s["type"] == "sample" and _enumerated(s)
    ]
    for name in summed:
        nested = [f for f in guide_trace.nodes[name]["cond_indep_stack"] if f.vectorized]
        if len(nested) > 2:  # the particles and the data plate, nothing else
            raise SiteError(
                f"site {name!r} is enumerated inside a plate nested in the data plate; exact "
                "sums cover discrete sites of the data plate only (sample it instead)"
            )
    width = dims + len(summed)
    log_w, log_q_enum, global_sites = x.new_zeros(()), x.new_zeros(()), []
    for trace, sign in ((model_trace, 1.0), (guide_trace, -1.0)):
        for name, site in trace.nodes.items():
            if site["type"] != "sample" or site_is_subsample(site):
                continue
            if trace is model_trace and not site["is_observed"] and name not in guide_trace:
                continue  # proposed from its prior: log p - log q = 0
            if not site["is_observed"] and not _data_dims(site, n, dims):
                global_sites.append(name)  # theta: p(theta) / q(theta) leaves the weight
                continue
            log_w = log_w + sign * _per_point(site, n, dims, width)
            if trace is guide_trace and _enumerated(site):  # q(y | x), the sum's weights
                log_q_enum = log_q_enum + _per_point(site, n, dims, width, weighted=False)
    if summed:
        log_w, probs = torch.broadcast_tensors(log_w, log_q_enum.exp())
        enum_dims = tuple(range(len(summed)))
        elbo = (probs * log_w).sum(enum_dims)
        log_w = torch.logsumexp(log_w + log_q_enum, enum_dims)
    else:
        elbo = log_w
    shape = (num_samples, n)
    return Weights(
        log_w.expand(shape), elbo.expand(shape), tuple(summed), tuple(dict.fromkeys(global_sites))
    )


def log_importance_weights(
    model: Callable[..., Any],
    guide: Callable[..., Any],
    x: torch.Tensor,
    num_samples: int,
    **options: Any,
) -> torch.Tensor:
    """The ``log_w`` of :func:`pyromix.importance.importance_weights` (same arguments), shape
    ``(num_samples, N)``."""
    return importance_weights(model, guide, x, num_samples, **options).log_w


def _per_point(site: dict, n: int, dims: int, width: int, weighted: bool = True) -> torch.Tensor:
    """The site's log-density, scaled and masked (``weighted``) or as is, summed within a point,
    as a tensor of ``width`` dims: the enumeration dims, the particles (S or 1), the point (N or
    1)."""
    name, scale, mask = site["name"], site["scale"], site["mask"]
    for frame in site["cond_indep_stack"]:  # a weight is per point: undo subsampling's N / B
        if frame.full_size is not None and frame.size:
            scale = scale * frame.size / frame.full_size
    log_p = site["fn"].log_prob(site["value"])
    if weighted:
        log_p = scale_and_mask(log_p, scale, mask)
    if not isinstance(log_p, torch.Tensor) or not bool(log_p.ne(0).any()):
        return torch.zeros(())  # fully masked, scaled to 0, or a deterministic site
    data = _data_dims(site, n, dims)
    if not data:
        raise SiteError(
            f"site {name!r} is an observation or factor outside the data plate (no plate of "
            f"size N={n} encloses it): it has no per-point share of the log-likelihood; put it "
            "inside the data plate"
        )
    if log_p.dim() > width:
        raise SiteError(
            f"site {name!r} has log-density shape {tuple(log_p.shape)}: more batch dimensions "
            f"than the {dims - 1} plate(s) of max_plate_nesting, the particles and the "
            "enumerated sites; declare them as plates or raise max_plate_nesting"
        )
    log_p = log_p.reshape((1,) * (width - log_p.dim()) + tuple(log_p.shape))
    within = [d for d in range(-dims + 1, 0) if d != data[0]]
    if within:
        log_p = log_p.sum(within, keepdim=True)
    return log_p.reshape(*log_p.shape[: width - dims + 1], log_p.shape[data[0]])


def chunk_sizes(total: int, size: int) -> list[int]:
    """``total`` split into pieces of at most ``size``."""
    return [size] * (total // size) + ([total % size] if total % size else [])


def values_per_sample(summed: dict[str, int]) -> int:
    """How many values enumeration evaluates per importance sample: the product of the
    numbers of values of the summed sites (the K-fold cost of exact sums)."""
    return math.prod(summed.values())
