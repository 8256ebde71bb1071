"""The two-level guide of the hierarchical VAE: q(z2 | x) q(z1 | x, z2)."""

from __future__ import annotations

import pyro
import torch
from torch import nn

from pyromix.local_params import LocalModule
from pyromix.nn import joint_input
from pyromix.sites import DATA_PLATE, Z1, Z2

__all__ = ["HierarchicalGuide"]


class HierarchicalGuide(LocalModule):
    r"""``q(z1, z2 | x) = q(z2 | x) q(z1 | x, z2)`` (Tomczak & Welling 2018, eq. 16).

    Arguments:
        z2_encoder: module mapping x to ``Independent(Normal(...), 1)`` over z2 (the VampPrior
            shares it).
        z1_encoder: module mapping ``[x, z2]`` to the Normal over z1.
    """

    def __init__(self, z2_encoder: nn.Module, z1_encoder: nn.Module) -> None:
        super().__init__()
        self.z2_encoder, self.z1_encoder = z2_encoder, z1_encoder

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        with pyro.plate(DATA_PLATE, x.shape[0]):
            z2 = pyro.sample(Z2, self.z2_encoder(x))
            return pyro.sample(Z1, self.z1_encoder(joint_input(x, z2)))

    @torch.no_grad()
    def latent_mean(self, x: torch.Tensor) -> torch.Tensor:
        """``[E q(z1 | x, m2), m2]`` with ``m2 = E q(z2 | x)``: the code the decoder reads."""
        z2 = self.z2_encoder(x).mean
        return joint_input(self.z1_encoder(joint_input(x, z2)).mean, z2)
