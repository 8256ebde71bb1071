"""Guides with flows: an IAF posterior q(z | x), and the uniform dequantisation of a flow model."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from torch import nn

from pyromix.local_params import LocalModule
from pyromix.nn import NormalHead
from pyromix.sites import DATA_PLATE, U, Z

__all__ = ["EmptyGuide", "IAFGuide", "UniformDequantization"]


class IAFGuide(LocalModule):
    r"""``q(z | x)``: a diagonal Gaussian followed by K conditional IAF transforms::

        z0 ~ N(mu(h), diag sigma(h)^2),  h = body(x)
        z_k = mu_k(z_{k-1}, h) + sigma_k(z_{k-1}, h) * z_{k-1}     (autoregressive in z)
        log q(z_K | x) = log N(z0) - sum_k sum_i log sigma_k,i

    The determinant is triangular, so log q of the guide's own draw costs one pass (Pyro caches
    it); the context h lets every step depend on x (Kingma et al. 2016, 3-4, eq. 10-11).

    Arguments:
        encoder: a :class:`pyromix.nn.NormalHead` (its ``body`` gives h).
        flows: ``ConditionalAffineAutoregressive`` transforms with context size
            ``encoder.body.out_features`` (:func:`pyromix.flows.iaf_stack`).

    Example:
        >>> from pyromix.flows import iaf_stack
        >>> from pyromix.nn import mlp
        >>> guide = IAFGuide(NormalHead(mlp(4, [8]), 2), iaf_stack(2, 8, 2, [8]))
        >>> guide.posterior(torch.zeros(3, 4)).rsample().shape
        torch.Size([3, 2])
    """

    def __init__(self, encoder: NormalHead, flows: nn.ModuleList) -> None:
        super().__init__()
        self.encoder, self.flows = encoder, flows

    def posterior(self, x: torch.Tensor) -> dist.TransformedDistribution:
        """q(z | x), batch shape ``x.shape[:-1]``."""
        h = self.encoder.body(x)
        return dist.TransformedDistribution(
            self.encoder.head(h), [flow.condition(h) for flow in self.flows]
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        with pyro.plate(DATA_PLATE, x.shape[0]):
            return pyro.sample(Z, self.posterior(x))

    @torch.no_grad()
    def latent_mean(self, x: torch.Tensor) -> torch.Tensor:
        """The flows applied to the Gaussian's mean: a point summary of q(z | x) (its mean has
        no closed form), used for latent plots and the latent-GMM clustering."""
        h = self.encoder.body(x)
        z = self.encoder.head(h).mean
        for flow in self.flows:
            z = flow.condition(h)(z)
        return z


class UniformDequantization(LocalModule):
    """``u ~ U(0, 1)^D``: the guide of :class:`pyromix.models.FlowDensity`, the uniform
    proposal whose importance weights estimate the discrete log-probability of the levels.

    Learning q(u | x) instead would be variational dequantisation (Soons 2020, 3.3).

    Arguments:
        dim: D, size of x.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        with pyro.plate(DATA_PLATE, x.shape[0]):
            noise = dist.Uniform(x.new_zeros(()), x.new_ones(())).expand([self.dim]).to_event(1)
            return pyro.sample(U, noise)


class EmptyGuide(LocalModule):
    """The guide of a model with no latent site to infer: a flow on continuous data (its log
    p(x) is then exact) or a GAN (an implicit model; its z is never inferred)."""

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> None:
        return None
