"""Amortised diagonal-Gaussian posterior q(z | x)."""

from __future__ import annotations

import pyro
import torch
from torch import nn

from pyromix.local_params import LocalModule
from pyromix.sites import DATA_PLATE, Z

__all__ = ["GaussianGuide"]


class GaussianGuide(LocalModule):
    r"""``q(z | x) = N(mu(x), diag sigma(x)^2)``, the reparameterised encoder (Soons 2020, 1.7-1.8).

    Arguments:
        encoder: module mapping x to ``Independent(Normal(mu, sigma), 1)``, e.g.
            :class:`pyromix.nn.NormalHead`.
    """

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        with pyro.plate(DATA_PLATE, x.shape[0]):
            return pyro.sample(Z, self.encoder(x))

    @torch.no_grad()
    def latent_mean(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior means E_q[z | x], the representation clustered by the latent-GMM protocol."""
        return self.encoder(x).mean
