"""Priors p(z): modules whose ``forward()`` returns a distribution with event shape (latent_dim,).

A prior holds no batch dimensions; the model's data plate broadcasts it. Its tensors are buffers
or parameters, so ``.to(device)`` moves it and samples land on the data's device.
"""

from __future__ import annotations

import pyro.distributions as dist
import torch
from torch import nn
from torch.nn import functional as F

from pyromix.nn import glorot_means, positive

__all__ = ["StandardNormalPrior", "MixtureOfGaussiansPrior", "VampPrior"]


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


def _uniform_mixture(components: dist.Independent) -> dist.MixtureSameFamily:
    weights = components.batch_shape[-1]
    logits = components.mean.new_zeros(weights)
    return dist.MixtureSameFamily(dist.Categorical(logits=logits), components)


class MixtureOfGaussiansPrior(nn.Module):
    """``p(z) = (1/K) sum_k N(z; mu_k, diag sigma_k^2)`` with learned components, k summed out.

    The "MG" baseline of seed 001 (5): a learned multimodal prior without a categorical site.
    The means start Glorot-small (:func:`~pyromix.nn.glorot_means`) and the scales at 0.69.

    Arguments:
        latent_dim: size of z.
        num_components: K.
        std_min: lower bound on sigma_k.
    """

    def __init__(self, latent_dim: int, num_components: int, std_min: float = 0.0) -> None:
        super().__init__()
        if num_components < 1:
            raise ValueError(f"num_components: expected an integer >= 1, got {num_components}")
        self.latent_dim, self.num_components, self.std_min = latent_dim, num_components, std_min
        self.loc = nn.Parameter(glorot_means(num_components, latent_dim))
        self.raw_scale = nn.Parameter(torch.zeros(num_components, latent_dim))

    def components(self) -> dist.Independent:
        """The K Gaussians, batch shape (K,)."""
        return dist.Normal(self.loc, positive(self.raw_scale, self.std_min)).to_event(1)

    def forward(self) -> dist.MixtureSameFamily:
        return _uniform_mixture(self.components())


class VampPrior(nn.Module):
    r"""``p(z) = (1/K) sum_k q(z | u_k)``: the encoder's mixture at K learned pseudo-inputs.

    The variational mixture of posteriors prior (Tomczak & Welling 2018; seed 004, eq. 9). The
    encoder is the guide's own module, shared, so the prior follows the posterior it models.
    Pseudo-inputs are kept in the data range by a hard tanh into ``bounds`` (seed 004, 5.2:
    [0, 1] for images).

    Arguments:
        encoder: module mapping x to ``Independent(Normal(...), 1)`` (the guide's encoder).
        num_components: K pseudo-inputs.
        data_dim: size of x.
        bounds: range the pseudo-inputs are clipped to, or None for no clipping.
        init: optional (K, data_dim) starting pseudo-inputs (e.g. training points); default
            uniform in ``bounds`` (or standard normal without bounds).
    """

    def __init__(
        self,
        encoder: nn.Module,
        num_components: int,
        data_dim: int,
        *,
        bounds: tuple[float, float] | None = (0.0, 1.0),
        init: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if num_components < 1:
            raise ValueError(f"num_components: expected an integer >= 1, got {num_components}")
        if init is None:
            init = (
                torch.rand(num_components, data_dim)
                if bounds
                else torch.randn(num_components, data_dim)
            )
            if bounds:
                init = bounds[0] + (bounds[1] - bounds[0]) * init
        if tuple(init.shape) != (num_components, data_dim):
            raise ValueError(
                f"init: expected shape {(num_components, data_dim)}, got {tuple(init.shape)}"
            )
        self.encoder, self.bounds = encoder, bounds
        self.num_components = num_components
        self.pseudo_inputs = nn.Parameter(init.detach().clone().float())

    def inputs(self) -> torch.Tensor:
        """The pseudo-inputs u_k inside ``bounds``."""
        if self.bounds is None:
            return self.pseudo_inputs
        return F.hardtanh(self.pseudo_inputs, *self.bounds)

    def components(self) -> dist.Independent:
        """q(z | u_k) for the K pseudo-inputs, batch shape (K,)."""
        return self.encoder(self.inputs())

    def forward(self) -> dist.MixtureSameFamily:
        return _uniform_mixture(self.components())
