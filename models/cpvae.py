"""CP-VAE: the Gaussian-mixture VAE whose decoder sees the category, with c one-hot."""

from __future__ import annotations

import pyro.distributions as dist
import torch
from pyro.nn import PyroParam
from torch import nn
from torch.nn import functional as F

from pyromix.distributions import CategoryConditionalNormal
from pyromix.nn import glorot_means

from .mixture import GaussianMixtureVAE

__all__ = ["ConditionalPriorVAE"]


class ConditionalPriorVAE(GaussianMixtureVAE):
    r"""The two-level generative story of CP-VAE (Lavda et al. 2020, eq. 3-5)::

        c ~ Cat(1/K)                          (one-hot, uniform)
        z | c ~ N(mu_c, diag sigma_c^2)       (learned data-dependent conditional priors)
        x | z, c ~ p(x | d(z, c))             (the decoder reads [z, c])

    The :class:`~pyromix.models.GaussianMixtureVAE` with ``decoder_sees_y``, except that c is a
    one-hot vector rather than an index, so that a guide may replace it by a Gumbel-softmax
    relaxation (Lavda et al. 2020, eq. 11): the decoder then reads the relaxed vector and
    :class:`~pyromix.distributions.CategoryConditionalNormal` weights the component densities
    by it. Enumerated or sampled one-hot c gives the exact model.

    Arguments:
        likelihood: maps ``[z, c]`` (size latent_dim + K) to a distribution over x.
        latent_dim: size of z.
        num_categories: K.
        prior_std_min: lower bound on sigma_c.

    References:
        Lavda, Gregorova & Kalousis, CP-VAE (Lavda et al. 2020), 3.1-3.3.

    Example:
        >>> from pyromix.likelihoods import BernoulliLikelihood
        >>> from pyromix.nn import mlp
        >>> model = ConditionalPriorVAE(BernoulliLikelihood(mlp(2 + 3, [16], 64)), 2, 3)
        >>> model.generate(4, component=1).shape
        torch.Size([4, 64])
    """

    def __init__(
        self,
        likelihood: nn.Module,
        latent_dim: int,
        num_categories: int,
        *,
        prior_std_min: float = 0.0,
    ) -> None:
        super().__init__(
            likelihood, latent_dim, num_categories, prior_std_min=prior_std_min, decoder_sees_y=True
        )
        self.loc = PyroParam(glorot_means(num_categories, latent_dim))

    def cluster_prior(self) -> dist.OneHotCategorical:
        """p(c) = Cat(1/K) over one-hot vectors.

        Its support check is off so that a relaxed c from a Gumbel-softmax guide can be scored:
        the ELBO then uses the closed-form KL (eq. 9), but Pyro still computes every log density.
        """
        return dist.OneHotCategorical(logits=self.logits, validate_args=False)

    def component(self, y: torch.Tensor) -> CategoryConditionalNormal:
        """p(z | c) for one-hot (or relaxed) c of shape (..., K)."""
        return CategoryConditionalNormal(self.loc, self.scale, y)

    def category(self, index: torch.Tensor) -> torch.Tensor:
        return F.one_hot(index, self.num_clusters).to(self.loc.dtype)

    def one_hot(self, y: torch.Tensor) -> torch.Tensor:
        return y
