"""The Bernoulli observation model for binary data."""

from __future__ import annotations

import pyro.distributions as dist
import torch
from torch import nn

__all__ = ["BernoulliLikelihood"]


class BernoulliLikelihood(nn.Module):
    """``x | z ~ Bernoulli(sigmoid(decoder(z)))`` per dimension (Soons 2020, 1.1).

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
