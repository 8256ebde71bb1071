"""Observation models p(x | z): a decoder network plus a distribution over the data.

Each likelihood maps latents of any batch shape ``(..., latent_dim)`` to a distribution with
event shape ``(D,)`` and exposes ``mean(z)`` for sample grids.
"""

from __future__ import annotations

import pyro.distributions as dist
import torch
from torch import nn

from .nn import positive

__all__ = ["BernoulliLikelihood", "GaussianLikelihood", "LIKELIHOODS"]


class BernoulliLikelihood(nn.Module):
    """``x | z ~ Bernoulli(sigmoid(decoder(z)))`` per dimension (seed 003, 1.1).

    Arguments:
        decoder: network mapping ``(..., latent_dim)`` to ``(..., D)`` logits.
    """

    support_is_binary = True

    def __init__(self, decoder: nn.Module) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(self, z: torch.Tensor) -> dist.Independent:
        return dist.Bernoulli(logits=self.decoder(z)).to_event(1)

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z))


class GaussianLikelihood(nn.Module):
    """``x | z ~ N(decoder(z), diag sigma^2)`` with a learned per-dimension std.

    ``sigma = softplus(raw) + std_min``; ``std_min`` (seed 002's eps_x) is a plain attribute so a
    schedule such as std annealing can lower it during training.

    Arguments:
        decoder: network mapping ``(..., latent_dim)`` to ``(..., D)`` means.
        data_dim: D.
        std_min: lower bound on the std.
        sigmoid_mean: squash the mean into [0, 1] (seed 004, 5.2, for grey-scale images).
    """

    support_is_binary = False

    def __init__(
        self, decoder: nn.Module, data_dim: int, std_min: float = 1e-3, sigmoid_mean: bool = False
    ) -> None:
        super().__init__()
        self.decoder = decoder
        self.raw_scale = nn.Parameter(torch.zeros(data_dim))
        self.std_min = std_min
        self.sigmoid_mean = sigmoid_mean

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        loc = self.decoder(z)
        return torch.sigmoid(loc) if self.sigmoid_mean else loc

    def forward(self, z: torch.Tensor) -> dist.Independent:
        loc = self.mean(z)
        return dist.Normal(loc, positive(self.raw_scale, self.std_min).expand_as(loc)).to_event(1)


LIKELIHOODS = {"bernoulli": BernoulliLikelihood, "gaussian": GaussianLikelihood}
