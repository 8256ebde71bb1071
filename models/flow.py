"""Normalising flows as Pyro programs: an exact-likelihood density model, and a flow prior p(z).

References:
    Soons (2020), section 3 (change of variables, eq. 24; dequantisation, 3.3; sampling by the
    inverse pass).
    Dinh, Sohl-Dickstein & Bengio (2017), Real NVP; Theis et al. (2016), dequantisation bound.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from torch import nn

from pyromix.flows import dequantization_transforms
from pyromix.local_params import LocalModule
from pyromix.sites import DATA_PLATE, U, X
from pyromix.schema import Interval, check_value

__all__ = ["FlowDensity", "FlowPrior"]


def _base(loc: torch.Tensor, scale: torch.Tensor) -> dist.Independent:
    return dist.Normal(loc, scale).to_event(1)


class FlowDensity(LocalModule):
    r"""A flow density model ``x = T(e), e ~ N(0, I)``, with uniform dequantisation::

        u ~ U(0, 1)^D                  (only for data on L levels: digits, binary images)
        v = k + u, k = (L - 1) x       (the integer level of each pixel, plus noise)
        v ~ T_# N(0, I)                observed: log p(v) = log N(T^-1(v)) + log |det dT^-1/dv|

    ``T`` is the stack of invertible layers followed by the inverse logit that maps R onto
    (0, L) (:func:`pyromix.flows.dequantization_transforms`). Every level's cell
    ``[k, k + 1)^D`` has unit volume, so ``P(k) = E_u p(k + u)``: with the uniform guide as the
    proposal the importance-sampled log p(x) of :func:`pyromix.evaluate.log_likelihood` estimates
    the discrete log-probability of the levels, and the ELBO is the dequantisation bound
    ``E_u log p(k + u) <= log P(k)``, numbers on the same footing as a Bernoulli VAE's log p(x)
    when L = 2. Without levels (continuous data, ``levels=None``) x itself is observed,
    standardised by :meth:`standardize`'s statistics, and log p(x) is exact.

    Arguments:
        transforms: invertible layers base to data (:func:`pyromix.flows.flow_stack`).
        dim: D, size of x.
        levels: L >= 2, or None for continuous data.

    Example:
        >>> from pyromix.flows import flow_stack
        >>> flow = FlowDensity(flow_stack(4, 2, [8]), 4, levels=17)
        >>> x = flow.generate(3)
        >>> x.shape, bool(((x * 16) == (x * 16).round()).all())
        (torch.Size([3, 4]), True)
    """

    def __init__(self, transforms: nn.ModuleList, dim: int, levels: int | None = None) -> None:
        super().__init__()
        check_value("levels", levels, Interval(int, 2), None)
        self.transforms, self.dim, self.levels = transforms, dim, levels
        self.register_buffer("base_loc", torch.zeros(dim))
        self.register_buffer("base_scale", torch.ones(dim))
        self.register_buffer("data_loc", torch.zeros(dim))
        self.register_buffer("data_scale", torch.ones(dim))

    @torch.no_grad()
    def standardize(self, x: torch.Tensor) -> None:
        """Continuous data: the flow works on ``(x - mean) / std`` of these points (train split)."""
        self.data_loc.copy_(x.mean(0))
        self.data_scale.copy_(x.std(0).clamp(min=1e-6))

    def distribution(self) -> dist.TransformedDistribution:
        """The flow's density, of ``v`` (levels) or of x (continuous)."""
        if self.levels is None:
            outer = [dist.transforms.AffineTransform(self.data_loc, self.data_scale, event_dim=1)]
        else:
            outer = dequantization_transforms(self.levels)
        return dist.TransformedDistribution(
            _base(self.base_loc, self.base_scale), [*self.transforms, *outer]
        )

    def level(self, x: torch.Tensor) -> torch.Tensor:
        """The integer level k = (L - 1) x of data on the grid."""
        return torch.round(x * (self.levels - 1))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        with pyro.plate(DATA_PLATE, x.shape[0]):
            if self.levels is None:
                return pyro.sample(X, self.distribution(), obs=x)
            noise = dist.Uniform(x.new_zeros(()), x.new_ones(())).expand([self.dim]).to_event(1)
            u = pyro.sample(U, noise)
            return pyro.sample(X, self.distribution(), obs=self.level(x) + u)

    @torch.no_grad()
    def generate(self, n: int, *, mean: bool = True, component=None, weights=None) -> torch.Tensor:
        """``n`` draws by the inverse pass: ``e ~ N(0, I)`` through the layers; with levels, the
        level of each dequantised draw (``floor v``) on the data's [0, 1] grid.

        ``mean`` is ignored (a flow has no decoder mean); ``component`` and ``weights`` must be
        None (no mixture).
        """
        if component is not None or weights is not None:
            raise ValueError("component/weights: a flow is not a mixture; leave them None")
        v = self.distribution().sample((n,))
        if self.levels is None:
            return v
        return v.floor().clamp(0, self.levels - 1) / (self.levels - 1)


class FlowPrior(nn.Module):
    """``p(z) = T_# N(0, I)``: a learned flow prior for a VAE's latent (pythae's MAF/IAF priors).

    Arguments:
        transforms: invertible layers on R^latent_dim (:func:`pyromix.flows.flow_stack`).
        latent_dim: size of z.

    Example:
        >>> from pyromix.flows import flow_stack
        >>> FlowPrior(flow_stack(2, 2, [8]), 2)().sample((5,)).shape
        torch.Size([5, 2])
    """

    def __init__(self, transforms: nn.ModuleList, latent_dim: int) -> None:
        super().__init__()
        self.transforms, self.latent_dim = transforms, latent_dim
        self.register_buffer("loc", torch.zeros(latent_dim))
        self.register_buffer("scale", torch.ones(latent_dim))

    def forward(self) -> dist.TransformedDistribution:
        return dist.TransformedDistribution(_base(self.loc, self.scale), list(self.transforms))
