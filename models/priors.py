"""Priors p(z): modules whose ``forward()`` returns a distribution with event shape (latent_dim,).

A prior holds no batch dimensions; the model's data plate broadcasts it. Its tensors are buffers
or parameters, so ``.to(device)`` moves it and samples land on the data's device.

A mixture prior's density holds K x latent_dim numbers per draw of z; it says so in
``numbers_per_sample``, which :func:`pyromix.evaluate.log_likelihood` reads to size its chunks
(a VampPrior with K = 500 would otherwise ask for tens of GB at S = 1000).
"""

from __future__ import annotations

import math

import pyro.distributions as dist
import torch
from torch import nn

from pyromix.nn import glorot_means, positive
from pyromix.schema import Interval, check_value

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

    The "MG" baseline of Lavda et al. (2020) (5): a learned multimodal prior without a categorical site.
    The means start Glorot-small (:func:`~pyromix.nn.glorot_means`) and the scales at 0.69.

    Arguments:
        latent_dim: size of z.
        num_components: K.
        std_min: lower bound on sigma_k.
    """

    def __init__(self, latent_dim: int, num_components: int, std_min: float = 0.0) -> None:
        super().__init__()
        check_value("num_components", num_components, Interval(int, 1))
        self.latent_dim, self.num_components, self.std_min = latent_dim, num_components, std_min
        self.loc = nn.Parameter(glorot_means(num_components, latent_dim))
        self.raw_scale = nn.Parameter(torch.zeros(num_components, latent_dim))

    def components(self) -> dist.Independent:
        """The K Gaussians, batch shape (K,)."""
        return dist.Normal(self.loc, positive(self.raw_scale, self.std_min)).to_event(1)

    def forward(self) -> dist.MixtureSameFamily:
        return _uniform_mixture(self.components())

    @property
    def numbers_per_sample(self) -> int:
        """K x latent_dim, read by :func:`pyromix.evaluate.log_likelihood` to size its chunks."""
        return self.loc.numel()


class VampPrior(nn.Module):
    r"""``p(z) = (1/K) sum_k q(z | u_k)``: the encoder's mixture at K learned pseudo-inputs.

    The variational mixture of posteriors prior (Tomczak & Welling 2018; Takahashi et al. 2019, eq. 9). The
    encoder is the guide's own module, shared, so the prior follows the posterior it models.
    Pseudo-inputs are kept in the data range by clipping into ``bounds`` (a hard tanh; Takahashi et al. 2019,
    5.2: [0, 1] for images). Outside the data the encoder extrapolates, and its std there can
    shrink towards 0 until the prior's gradients overflow.

    Arguments:
        encoder: module mapping x to ``Independent(Normal(...), 1)`` (the guide's encoder).
        num_components: K pseudo-inputs.
        data_dim: size of x.
        bounds: ``(lower, upper)`` the pseudo-inputs are clipped to, numbers or ``(data_dim,)``
            tensors (e.g. the training data's range, see :meth:`set_bounds`), or None.
        init: optional (K, data_dim) starting pseudo-inputs (e.g. training points); default
            uniform in ``bounds`` (standard normal without bounds).
    """

    def __init__(
        self,
        encoder: nn.Module,
        num_components: int,
        data_dim: int,
        *,
        bounds: tuple[float | torch.Tensor, float | torch.Tensor] | None = (0.0, 1.0),
        init: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        check_value("num_components", num_components, Interval(int, 1))
        self.encoder, self.num_components = encoder, num_components
        self.register_buffer("lower", torch.full((data_dim,), -math.inf))
        self.register_buffer("upper", torch.full((data_dim,), math.inf))
        self.pseudo_inputs = nn.Parameter(torch.empty(num_components, data_dim))
        if bounds is not None:
            self.set_bounds(*bounds)
        if init is None:
            init = self.random_inputs()
        if tuple(init.shape) != (num_components, data_dim):
            raise ValueError(
                f"init: expected shape {(num_components, data_dim)}, got {tuple(init.shape)}"
            )
        with torch.no_grad():
            self.pseudo_inputs.copy_(init)

    def set_bounds(self, lower: float | torch.Tensor, upper: float | torch.Tensor) -> None:
        """Clip the pseudo-inputs into ``[lower, upper]`` (numbers or per-feature tensors)."""
        lower, upper = (torch.as_tensor(b, dtype=self.lower.dtype) for b in (lower, upper))
        if not (lower <= upper).all():
            raise ValueError("bounds: expected lower <= upper in every feature")
        with torch.no_grad():
            self.lower.copy_(lower.expand_as(self.lower))
            self.upper.copy_(upper.expand_as(self.upper))

    def random_inputs(self) -> torch.Tensor:
        """K draws uniform in the bounds, or standard normal if any feature is unbounded."""
        shape = self.pseudo_inputs.shape
        if torch.isfinite(self.lower).all() and torch.isfinite(self.upper).all():
            return self.lower + (self.upper - self.lower) * torch.rand(
                shape, device=self.lower.device
            )
        return torch.randn(shape, device=self.lower.device)

    def inputs(self) -> torch.Tensor:
        """The pseudo-inputs u_k inside the bounds."""
        return torch.clamp(self.pseudo_inputs, self.lower, self.upper)

    def components(self) -> dist.Independent:
        """q(z | u_k) for the K pseudo-inputs, batch shape (K,)."""
        return self.encoder(self.inputs())

    def forward(self) -> dist.MixtureSameFamily:
        return _uniform_mixture(self.components())

    @property
    def numbers_per_sample(self) -> int:
        """K x latent_dim, read by :func:`pyromix.evaluate.log_likelihood` to size its chunks."""
        with torch.no_grad():
            one = self.encoder(self.inputs()[:1])
        return self.num_components * math.prod(one.event_shape)
