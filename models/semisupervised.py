"""M2, the semi-supervised VAE: a class label y beside the continuous latent z."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from torch import nn
from torch.nn import functional as F

from pyromix.local_params import LocalModule
from pyromix.sites import DATA_PLATE, X, Y, Z

from .mixture import component_indices, with_category
from pyromix.schema import Interval, check_value

__all__ = ["SemiSupervisedVAE"]


class SemiSupervisedVAE(LocalModule):
    r"""The generative story of M2 (Kingma et al. 2014, sec. 2.2, eq. 2)::

        y ~ Cat(1/K)              (observed where revealed, latent elsewhere)
        z ~ N(0, I)
        x | y, z ~ p(x | y, z)    (the decoder reads [z, one_hot(y)])

    Labels arrive as :mod:`pyromix.labels` says: ``forward(x, y, y_mask)`` observes y where
    ``y_mask`` is True and leaves the rest to the guide, through Pyro's ``obs_mask`` (sites
    ``"y_observed"`` and ``"y_unobserved"``). Without labels every y is latent, so held-out
    evidence is log p(x) with y summed out.

    Arguments:
        likelihood: maps ``[z, one_hot(y)]`` to a distribution over x, with ``mean``.
        latent_dim: size of z.
        num_classes: K.

    References:
        Kingma, Rezende, Mohamed & Welling (2014), "Semi-supervised learning with deep
        generative models", eq. 2 (M2), eq. 6-9 (its bound and the classification term).
    """

    decoder_sees_y = True

    def __init__(self, likelihood: nn.Module, latent_dim: int, num_classes: int) -> None:
        super().__init__()
        check_value("num_classes", num_classes, Interval(int, 2))
        self.likelihood, self.latent_dim, self.num_clusters = likelihood, latent_dim, num_classes

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None, y_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        n = x.shape[0]
        if y is None:  # nothing revealed: every label is latent
            y, y_mask = x.new_zeros(n, dtype=torch.long), x.new_zeros(n, dtype=torch.bool)
        with pyro.plate(DATA_PLATE, n):
            prior_y = dist.Categorical(logits=x.new_zeros(self.num_clusters))
            y = pyro.sample(Y, prior_y, obs=y, obs_mask=y_mask)
            prior_z = dist.Normal(x.new_zeros(self.latent_dim), 1.0).to_event(1)
            z = pyro.sample(Z, prior_z)
            return pyro.sample(X, self.likelihood(self.decoder_input(z, y)), obs=x)

    def decoder_input(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``[z, one_hot(y)]``, broadcasting enumerated or particle dims of either."""
        return with_category(z, F.one_hot(y, self.num_clusters))

    def category(self, index: torch.Tensor) -> torch.Tensor:
        """The value of the y site for class indices (the index itself)."""
        return index

    @torch.no_grad()
    def generate(
        self,
        n: int,
        *,
        mean: bool = True,
        component: int | None = None,
        weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Ancestral samples: y uniform, from ``weights`` (K,), or fixed at class ``component``;
        z ~ N(0, I); decoded to means (or draws with ``mean=False``)."""
        device = next(self.likelihood.parameters()).device
        k = self.num_clusters
        y = component_indices(n, k, device, component=component, weights=weights)
        if y is None:
            y = torch.randint(k, (n,), device=device)
        z = torch.randn(n, self.latent_dim, device=device)
        h = self.decoder_input(z, y)
        return self.likelihood.mean(h) if mean else self.likelihood(h).sample()
