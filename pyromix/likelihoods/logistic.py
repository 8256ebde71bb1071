"""The discretised logistic and its mixture: probabilities of data on L levels.

Data on L evenly spaced levels ``x = k / (L - 1)``, ``k = 0, ..., L - 1`` (8-bit images scaled to
[0, 1] have L = 256, digits / 16 has L = 17), get the probability mass that a logistic
distribution puts on each level's bin, ``[x - h, x + h]`` with ``h = 1 / (2 (L - 1))``; the edge
bins reach out to -inf (k = 0) and +inf (k = L - 1), so the L probabilities sum to 1. A mixture
of K such logistics per dimension is PixelCNN++'s observation model. Its log p(x) is a
log-probability of the discrete levels, the event a flow on dequantised levels scores, so bits/dim
compare with the flow recipe's.

References:
    Salimans, Karpathy, Chen and Kingma (2017), *PixelCNN++: improving the PixelCNN with
    discretized logistic mixture likelihood and other modifications*, ICLR, section 2.1.
    Kingma, Salimans, Jozefowicz, Chen, Sutskever and Welling (2016), *Improved variational
    inference with inverse autoregressive flow*, NeurIPS (the discretised logistic).
"""

from __future__ import annotations

import math

import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.distributions.torch_distribution import TorchDistribution
from torch import nn
from torch.nn import functional as F
from ..schema import Interval, check_value

__all__ = ["DiscretizedLogisticMixture", "DiscretizedLogisticLikelihood", "LOG_SCALE_MIN"]

LOG_SCALE_MIN = -7.0
"""PixelCNN++'s floor on a logistic's log-scale (in units of the [0, 1] data range)."""


def _log1mexp(d: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(-d))`` for d > 0, accurate for small and large d (Maechler 2012)."""
    return torch.where(d < math.log(2.0), torch.log(-torch.expm1(-d)), torch.log1p(-torch.exp(-d)))


class DiscretizedLogisticMixture(TorchDistribution):
    """A mixture of K logistics per dimension, discretised onto the L levels ``k / (L - 1)``.

    With ``a = (x + h - mu) / s`` and ``b = (x - h - mu) / s`` one component gives level k the
    mass ``sigmoid(a) - sigmoid(b)``, computed as
    ``a - softplus(a) - softplus(b) + log(1 - exp(-(a - b)))`` (no cancellation at any scale),
    ``sigmoid(a)`` for k = 0 and ``1 - sigmoid(b)`` for k = L - 1. Values are rounded to their
    nearest level.

    Arguments:
        logits: mixture weights' logits, shape (..., K).
        loc: component locations mu on the [0, 1] scale of the data, shape (..., K).
        log_scale: component log-scales log s, shape (..., K).
        levels: L >= 2.

    Example:
        >>> d = DiscretizedLogisticMixture(torch.zeros(1), torch.zeros(1) + 0.5, torch.zeros(1), 5)
        >>> float(d.log_prob(torch.linspace(0, 1, 5)).exp().sum())  # doctest: +ELLIPSIS
        1.0...
    """

    arg_constraints = {
        "logits": constraints.real,
        "loc": constraints.real,
        "log_scale": constraints.real,
    }
    support = constraints.unit_interval
    has_rsample = False

    def __init__(
        self,
        logits: torch.Tensor,
        loc: torch.Tensor,
        log_scale: torch.Tensor,
        levels: int,
        validate_args: bool | None = None,
    ) -> None:
        check_value("levels", levels, Interval(int, 2))
        self.logits, self.loc, self.log_scale = torch.broadcast_tensors(logits, loc, log_scale)
        self.levels = levels
        super().__init__(self.loc.shape[:-1], validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(DiscretizedLogisticMixture, _instance)
        shape = torch.Size(batch_shape) + self.loc.shape[-1:]
        new.logits, new.loc = self.logits.expand(shape), self.loc.expand(shape)
        new.log_scale, new.levels = self.log_scale.expand(shape), self.levels
        super(DiscretizedLogisticMixture, new).__init__(
            torch.Size(batch_shape), validate_args=False
        )
        new._validate_args = self._validate_args
        return new

    def component_log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """log P(level of ``value`` | component), shape (..., K)."""
        top = self.levels - 1
        k = torch.round(value * top).clamp(0, top).unsqueeze(-1)
        inv_scale = torch.exp(-self.log_scale)
        a = (k + 0.5 - top * self.loc) * inv_scale / top
        b = a - inv_scale / top
        middle = a - F.softplus(a) - F.softplus(b) + _log1mexp(a - b)
        lower, upper = F.logsigmoid(a), -F.softplus(b)
        return torch.where(k == 0, lower, torch.where(k == top, upper, middle))

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        weights = torch.log_softmax(self.logits, -1)
        return torch.logsumexp(weights + self.component_log_prob(value), -1)

    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        with torch.no_grad():
            shape = self._extended_shape(sample_shape)
            component = dist.Categorical(logits=self.logits).sample(sample_shape).unsqueeze(-1)
            loc = self.loc.expand(shape + self.loc.shape[-1:]).gather(-1, component).squeeze(-1)
            scale = self.log_scale.expand(shape + self.loc.shape[-1:]).gather(-1, component)
            u = torch.rand(shape, dtype=loc.dtype, device=loc.device).clamp(1e-6, 1 - 1e-6)
            x = loc + scale.squeeze(-1).exp() * (torch.log(u) - torch.log1p(-u))
            top = self.levels - 1
            return torch.round(x * top).clamp(0, top) / top

    @property
    def mean(self) -> torch.Tensor:
        """E[x] = (1 / (L - 1)) sum_{k=1}^{L-1} P(level >= k), each term a mixture of logistic
        survival functions at the bin edge (k - 1/2) / (L - 1)."""
        top = self.levels - 1
        weights = torch.softmax(self.logits, -1)
        total, scale = torch.zeros_like(self.loc[..., 0]), self.log_scale.exp()
        for k in range(1, self.levels):
            edge = (k - 0.5) / top
            total = total + (weights * torch.sigmoid((self.loc - edge) / scale)).sum(-1)
        return total / top


class DiscretizedLogisticLikelihood(nn.Module):
    """``x | z ~ prod_d DiscretizedLogisticMixture(pi_d(z), mu_d(z), s_d(z); L)``.

    The decoder outputs ``3 K`` values per dimension (K logits, K locations, K log-scales,
    in that order of blocks of D), or ``2`` when K = 1 (location, log-scale); log-scales are
    floored at ``LOG_SCALE_MIN`` as in PixelCNN++.

    Arguments:
        decoder: network mapping ``(..., in_dim)`` to ``(..., outputs_per_dim(K) * D)``.
        levels: L, the number of levels ``k / (L - 1)`` the data sit on.
        components: K (1: a single discretised logistic).
    """

    support_is_binary = False

    def __init__(self, decoder: nn.Module, levels: int, components: int = 1) -> None:
        super().__init__()
        check_value("components", components, Interval(int, 1))
        self.decoder, self.levels, self.components = decoder, levels, components

    @staticmethod
    def outputs_per_dim(components: int) -> int:
        """Decoder outputs per data dimension for K = ``components``."""
        return 2 if components == 1 else 3 * components

    def distribution(self, z: torch.Tensor) -> DiscretizedLogisticMixture:
        """The per-dimension mixture at ``z`` (batch shape (..., D))."""
        out = self.decoder(z)
        k = self.components
        blocks = out.reshape(*out.shape[:-1], self.outputs_per_dim(k), -1).movedim(-2, -1)
        if k == 1:
            loc, log_scale = blocks[..., :1], blocks[..., 1:]
            logits = torch.zeros_like(loc)
        else:
            logits, loc, log_scale = blocks[..., :k], blocks[..., k : 2 * k], blocks[..., 2 * k :]
        return DiscretizedLogisticMixture(
            logits, loc, log_scale.clamp(min=LOG_SCALE_MIN), self.levels
        )

    def forward(self, z: torch.Tensor) -> dist.Independent:
        return self.distribution(z).to_event(1)

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        """The expected value of x on the [0, 1] scale (exact, summed over the L levels)."""
        return self.distribution(z).mean
