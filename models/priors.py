"""Priors p(z): modules whose ``forward()`` returns a distribution with event shape (latent_dim,).

A prior holds no batch dimensions; the model's data plate broadcasts it. Its tensors are buffers
or parameters, so ``.to(device)`` moves it and samples land on the data's device.
"""

from __future__ import annotations

import pyro.distributions as dist
import torch
from torch import nn

__all__ = ["StandardNormalPrior"]


class StandardNormalPrior(nn.Module):
    """``z ~ N(0, I)``.

    Arguments:
        latent_dim: size of z.
    """

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.register_buffer("loc", torch.zeros(latent_dim))
        self.register_buffer("scale", torch.ones(latent_dim))

    def forward(self) -> dist.Independent:
        return dist.Normal(self.loc, self.scale).to_event(1)
