"""The hierarchical VAE with a VampPrior on the top latent (HVAE + VP).

References:
    Tomczak & Welling (2018), "VAE with a VampPrior", 3.3 (the two-level model, eq. 15-17);
    Lavda et al. (2020), Table 1 (the HVAE + VP baseline).
"""

from __future__ import annotations

import pyro
import torch
from torch import nn

from pyromix.nn import joint_input
from pyromix.sites import DATA_PLATE, X, Z1, Z2

from .vae import VAE

__all__ = ["HierarchicalVAE"]


class HierarchicalVAE(VAE):
    r"""The two-level generative story of Tomczak & Welling (2018, eq. 15)::

        z2 ~ p(z2)                         (the VampPrior: (1/K) sum_k q(z2 | u_k))
        z1 | z2 ~ N(mu(z2), diag sigma(z2)^2)
        x | z1, z2 ~ p(x | [z1, z2])

    paired with :class:`pyromix.guides.HierarchicalGuide`, ``q(z2 | x) q(z1 | x, z2)``. The
    representation of x is ``[z1, z2]`` (the guide's ``latent_mean``); the mixture
    responsibilities of :meth:`component_posterior` read its z2 part.

    Arguments:
        likelihood: module mapping ``[z1, z2]`` to p(x | z1, z2).
        z1_given_z2: module mapping z2 to ``Independent(Normal(...), 1)`` over z1.
        latent_dim: size of z2 (and of z1 in the shipped recipe).
        prior: p(z2), e.g. a :class:`pyromix.models.VampPrior` on the guide's z2 encoder.
    """

    def __init__(
        self, likelihood: nn.Module, z1_given_z2: nn.Module, latent_dim: int, prior: nn.Module
    ) -> None:
        super().__init__(likelihood, latent_dim, prior=prior)
        self.z1_given_z2 = z1_given_z2

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        with pyro.plate(DATA_PLATE, x.shape[0]):
            z2 = pyro.sample(Z2, self.prior())
            z1 = pyro.sample(Z1, self.z1_given_z2(z2))
            return pyro.sample(X, self.likelihood(joint_input(z1, z2)), obs=x)

    def component_posterior(self, z: torch.Tensor) -> torch.Tensor:
        """p(k | z2) for ``z = [z1, z2]`` (or z2 alone), shape (..., K)."""
        return super().component_posterior(z[..., -self.latent_dim :])

    @torch.no_grad()
    def decode_manifold(self, z2: torch.Tensor) -> torch.Tensor:
        """Decoder means over z2 alone, z1 at its conditional mean ``E[z1 | z2]``: the data
        manifold that ``manifold.png`` draws over a 2-D z2 (the decoder reads ``[z1, z2]``)."""
        return self.likelihood.mean(joint_input(self.z1_given_z2(z2).mean, z2))

    @torch.no_grad()
    def generate(
        self,
        n: int,
        *,
        mean: bool = True,
        component: int | None = None,
        weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Ancestral samples: z2 from the prior (``component``, ``weights`` as in
        :meth:`VAE.sample_prior`), z1 from p(z1 | z2), decoded to means or samples of x."""
        z2 = self.sample_prior(n, component, weights=weights)
        z = joint_input(self.z1_given_z2(z2).sample(), z2)
        return self.likelihood.mean(z) if mean else self.likelihood(z).sample()
