"""Weight the latent sites of a model and its guide: beta-VAE and KL warm-up."""

from __future__ import annotations

from pyro.poutine.messenger import Messenger

__all__ = ["LatentScaleMessenger", "scale_latents"]


class LatentScaleMessenger(Messenger):
    r"""Multiply the log-density of every *latent* sample site by ``weight``.

    Wrapping both model and guide turns the ELBO into
    ``E_q[log p(x | z)] - weight * KL(q(z | x) || p(z))``, the beta-weighted objective of KL
    warm-up (Bowman et al. 2016; seeds 001 and 004 anneal weight from 0 to 1) and of the beta
    variants. Observed sites keep their scale, so the reconstruction term is untouched; unlike
    ``poutine.scale``, which scales every site. One messenger wrapping both model and guide is
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
        if msg["type"] == "sample" and not msg["is_observed"]:
            msg["scale"] = self._weight * msg["scale"]


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
