"""Weight the latent sites of a model and its guide: beta-VAE and KL warm-up."""

from __future__ import annotations

import contextlib
from typing import Iterator

import pyro
import pyro.distributions as dist
import torch
from pyro.poutine.messenger import Messenger

__all__ = ["LatentScaleMessenger", "prior_factor", "scale_latents", "unweighted"]

_suspended = [0]  # depth of unweighted() blocks: evaluation inside one sees weight 1

# ``infer`` key marking a factor that is a term of log p(z), so that it is weighted like the
# latent sites (see :func:`prior_factor`).
_PRIOR_FACTOR = "prior_factor"


class LatentScaleMessenger(Messenger):
    r"""Multiply the log-density of every *latent* sample site by ``weight``.

    Wrapping both model and guide turns the ELBO into
    ``E_q[log p(x | z)] - weight * KL(q(z | x) || p(z))``, the beta-weighted objective of KL
    warm-up (Bowman et al. 2016; seeds 001 and 004 anneal weight from 0 to 1) and of the beta
    variants. Observed sites keep their scale, so the reconstruction term is untouched; unlike
    ``poutine.scale``, which scales every site. Factors written with :func:`prior_factor` are
    terms of log p(z) and are weighted with the latent sites. One messenger wrapping both model and guide is
    changed in one place (``messenger.weight = ...``) between epochs.

    Arguments:
        weight: the non-negative factor.
    """

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = weight

    @property
    def weight(self) -> float:
        return self._weight

    @weight.setter
    def weight(self, value: float) -> None:
        if not value >= 0:
            raise ValueError(f"weight: expected a non-negative number, got {value}")
        self._weight = float(value)

    def _process_message(self, msg) -> None:
        if _suspended[0]:
            return
        if msg["type"] == "sample" and (
            not msg["is_observed"] or msg["infer"].get(_PRIOR_FACTOR, False)
        ):
            msg["scale"] = self._weight * msg["scale"]


@contextlib.contextmanager
def unweighted() -> Iterator[None]:
    """Switch every :class:`LatentScaleMessenger` off inside the block.

    Warm-up and beta weights are training devices, not part of the model: evaluation
    (:func:`pyromix.evaluate.log_importance_weights`) runs inside this block, so a model handed
    over still wrapped in its training weight is scored as the model itself.

    Example:
        >>> def model():
        ...     pyro.sample("z", dist.Normal(0., 1.))
        >>> with unweighted():
        ...     tr = pyro.poutine.trace(scale_latents(model, 0.5)).get_trace()
        >>> tr.nodes["z"]["scale"]
        1.0
    """
    _suspended[0] += 1
    try:
        yield
    finally:
        _suspended[0] -= 1


def scale_latents(fn=None, weight: float = 1.0):
    """Handler form of :class:`LatentScaleMessenger`, like Pyro's ``poutine.scale``.

    Example:
        >>> import pyro, pyro.distributions as dist, torch
        >>> def model():
        ...     z = pyro.sample("z", dist.Normal(0., 1.))
        ...     pyro.sample("x", dist.Normal(z, 1.), obs=torch.tensor(0.))
        >>> tr = pyro.poutine.trace(scale_latents(model, 0.5)).get_trace()
        >>> tr.nodes["z"]["scale"], tr.nodes["x"]["scale"]
        (0.5, 1.0)
    """
    messenger = LatentScaleMessenger(weight)
    return messenger(fn) if fn is not None else messenger


def prior_factor(name: str, log_factor: torch.Tensor) -> None:
    r"""``pyro.factor`` for a term of the prior's log-density, weighted like the latent sites.

    A prior written as ``z ~ p0(z)`` times ``exp(f(z))`` (the implicit optimal prior of Takahashi et al. (2019),
    eq. 15: ``f = T(z)``) contributes ``-KL(q || p0) + E_q[f(z)]`` to the ELBO, and all of it is
    the regulariser that warm-up and beta weight; a plain ``pyro.factor`` would be left at weight
    1 by :class:`LatentScaleMessenger`, as it is an observed site.

    Arguments:
        name: site name.
        log_factor: the log factor, batched like the site's plates.

    Example:
        >>> def model():
        ...     z = pyro.sample("z", dist.Normal(0., 1.))
        ...     prior_factor("tilt", 0.5 * z)
        >>> tr = pyro.poutine.trace(scale_latents(model, 0.25)).get_trace()
        >>> tr.nodes["tilt"]["scale"], tr.nodes["tilt"]["is_observed"]
        (0.25, True)
    """
    unit = dist.Unit(log_factor)
    infer = {"is_auxiliary": True, _PRIOR_FACTOR: True}
    pyro.sample(name, unit, obs=unit.sample(), infer=infer)
