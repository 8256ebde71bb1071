"""The variational autoencoder as a Pyro model program."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from torch import nn

from pyromix.local_params import LocalModule
from pyromix.sites import DATA_PLATE, X, Z

from .mixture import component_indices
from .priors import StandardNormalPrior

__all__ = ["VAE"]


class VAE(LocalModule):
    r"""The generative story of a VAE (Kingma & Welling 2014; Soons 2020, 1.1)::

        z ~ p(z)              (N(0, I) unless another prior is given)
        x | z ~ p(x | z)      (the likelihood: Bernoulli or Gaussian decoder)

    Arguments:
        likelihood: module mapping z to a distribution over x, with a ``mean(z)`` method
            (see :mod:`pyromix.likelihoods`).
        latent_dim: size of z; used for the default standard normal prior.
        prior: module whose ``forward()`` returns p(z) with event shape ``(latent_dim,)``;
            later issues plug learned priors in here.

    Example:
        >>> from pyromix.likelihoods import BernoulliLikelihood
        >>> from pyromix.nn import mlp
        >>> model = VAE(BernoulliLikelihood(mlp(2, [16], 64)), latent_dim=2)
        >>> model.generate(3).shape
        torch.Size([3, 64])
    """

    def __init__(self, likelihood: nn.Module, latent_dim: int, prior: nn.Module | None = None):
        super().__init__()
        self.likelihood = likelihood
        self.latent_dim = latent_dim
        self.prior = prior if prior is not None else StandardNormalPrior(latent_dim)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        with pyro.plate(DATA_PLATE, x.shape[0]):
            z = pyro.sample(Z, self.prior())
            return pyro.sample(X, self.likelihood(z), obs=x)

    @property
    def num_components(self) -> int | None:
        """K for a mixture prior (MG, VampPrior), else None."""
        return getattr(self.prior, "num_components", None)

    def component_posterior(self, z: torch.Tensor) -> torch.Tensor:
        """p(k | z) under a uniform mixture prior (MG, VampPrior), shape (..., K)."""
        if not self.num_components:
            raise ValueError("component_posterior: this model's prior is not a mixture")
        return torch.softmax(self.prior.components().log_prob(z.unsqueeze(-2)), -1)

    @torch.no_grad()
    def sample_prior(
        self, n: int, component: int | None = None, *, weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``n`` draws of z from the prior, shape ``(n, latent_dim)``.

        With ``component=k`` z comes from the k-th component of a mixture prior (an MG
        Gaussian, or q(z | u_k) for a VampPrior pseudo-input); with ``weights`` (K,) the
        component of each draw is chosen with those probabilities instead of uniformly (e.g. the
        aggregated posterior over components, Lavda et al. (2020) eq. 14).
        """
        if component is None and weights is None:
            return self.prior().sample((n,))
        k = self.num_components
        if not k:
            raise ValueError(
                "component/weights: this model's prior is not a mixture; leave them None"
            )
        base = self.prior.components().base_dist
        index = component_indices(n, k, base.loc.device, component=component, weights=weights)
        return dist.Normal(base.loc[index], base.scale[index]).to_event(1).sample()

    @torch.no_grad()
    def generate(
        self,
        n: int,
        *,
        mean: bool = True,
        component: int | None = None,
        weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Ancestral samples: ``n`` draws of z from :meth:`sample_prior`, decoded to means or
        samples of x (``component`` and ``weights`` as there)."""
        z = self.sample_prior(n, component, weights=weights)
        return self.likelihood.mean(z) if mean else self.likelihood(z).sample()
