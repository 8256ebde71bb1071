"""Gaussian observation models: a per-dimension scale, or a variance the decoder computes.

Both score a density of continuous data. The per-dimension scale is homoscedastic: every image
gets the same std at a pixel. The heteroscedastic decoder outputs a mean and a log-variance per
dimension, so it can say that some pixels of some images are nearly certain, where much of a
grey-scale data set's density lives (Takahashi et al. 2019's reference code and the VampPrior's
both decode a log-variance).

References:
    Takahashi, Iwata, Yamanaka, Yamada and Yagi (2019), *Variational autoencoder with implicit
    optimal priors*, AAAI, 5.2 (Gaussian decoder, means squashed into [0, 1] by a sigmoid).
    Tomczak and Welling (2018), *VAE with a VampPrior*, AISTATS (its reference code bounds the
    decoder's log-variance to [-4.5, 0] with a hard tanh).
    Li et al. (2020), *Unsupervised clustering through Gaussian mixture variational autoencoder
    with non-reparameterized variational inference and std annealing*, IJCNN (the std floor).
"""

from __future__ import annotations

import math
from typing import Sequence

import pyro.distributions as dist
import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "GaussianLikelihood",
    "HeteroscedasticGaussianLikelihood",
    "SPREAD_FLOOR",
    "UNINITIALISED_LOG_SCALE",
]

SPREAD_FLOOR = 0.1
"""A dimension that is constant in the training split (an image's border) starts with this share
of the mean spread as its std, not with zero."""


UNINITIALISED_LOG_SCALE = math.log(math.log(2.0))
"""The log-scale before :meth:`GaussianLikelihood.init_from_data_`: a std of ln 2 above the floor
(where the softplus parametrisation of earlier versions started)."""


def _mean(loc: torch.Tensor, sigmoid_mean: bool) -> torch.Tensor:
    return torch.sigmoid(loc) if sigmoid_mean else loc


class GaussianLikelihood(nn.Module):
    """``x | z ~ N(decoder(z), diag sigma^2)`` with one learned std per dimension.

    ``sigma = std_min + exp(log_scale)``. :meth:`init_from_data_` starts ``log_scale`` at the
    training split's per-dimension spread, so that Adam, which moves ``log_scale`` by about the
    learning rate per step, starts near the data's scale instead of hundreds of epochs away.
    ``std_min`` (Li et al. 2020's eps_x) is a plain attribute so a schedule such as std annealing
    can lower it during training; the recipes that anneal it keep the fixed start
    ``UNINITIALISED_LOG_SCALE`` (the annealed floor, from 1, sets their scale).

    Arguments:
        decoder: network mapping ``(..., latent_dim)`` to ``(..., D)`` means.
        data_dim: D.
        std_min: lower bound on the std.
        sigmoid_mean: squash the mean into [0, 1] (Takahashi et al. 2019, 5.2).
    """

    support_is_binary = False

    def __init__(
        self, decoder: nn.Module, data_dim: int, std_min: float = 1e-3, sigmoid_mean: bool = False
    ) -> None:
        super().__init__()
        self.decoder = decoder
        self.log_scale = nn.Parameter(torch.full((data_dim,), UNINITIALISED_LOG_SCALE))
        self.std_min = std_min
        self.sigmoid_mean = sigmoid_mean

    @torch.no_grad()
    def init_from_data_(self, x: torch.Tensor) -> None:
        """Start each dimension's std at its spread (standard deviation) in ``x``, shape (N, D);
        a constant dimension starts at ``SPREAD_FLOOR`` times the mean spread."""
        spread = x.float().std(0) if x.shape[0] > 1 else torch.ones(x.shape[-1])
        floor = max(SPREAD_FLOOR * float(spread.mean()), 2 * self.std_min)
        std = spread.clamp(min=floor).to(self.log_scale)
        self.log_scale.copy_(torch.log(std - self.std_min))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        raw = state_dict.pop(prefix + "raw_scale", None)
        if raw is not None:  # saved as softplus(raw) + std_min: the same std in log-scale form
            state_dict[prefix + "log_scale"] = torch.log(F.softplus(raw))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def scale(self) -> torch.Tensor:
        """The per-dimension std, shape (D,)."""
        return self.log_scale.exp() + self.std_min

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        return _mean(self.decoder(z), self.sigmoid_mean)

    def forward(self, z: torch.Tensor) -> dist.Independent:
        loc = self.mean(z)
        return dist.Normal(loc, self.scale().expand_as(loc)).to_event(1)


class HeteroscedasticGaussianLikelihood(nn.Module):
    """``x | z ~ N(mu(z), diag sigma(z)^2)``, ``sigma = exp(log_var(z) / 2) + std_min``: the
    decoder outputs the mean and the log-variance per dimension.

    The decoder's output holds D means then D log-variances. Without ``logvar_bounds`` the
    log-variance is unbounded, as in Takahashi et al. (2019)'s reference code; with bounds
    ``(lo, hi)`` it is clamped to them, as the VampPrior's reference code does with a hard tanh
    to [-4.5, 0]: a variance floor keeps the density of near-constant pixels from growing without
    limit, at the price of a lower log p(x) where pixels really are that certain. ``std_min``
    (default 1e-3, an attribute that std annealing lowers) keeps the precision finite where a
    pixel is constant in the training data (an image's border): there an unbounded log-variance
    falls without end and training ends in NaN.

    Arguments:
        decoder: network mapping ``(..., in_dim)`` to ``(..., 2 D)``.
        sigmoid_mean: squash the mean into [0, 1] (Takahashi et al. 2019, 5.2).
        logvar_bounds: ``None`` or ``(lo, hi)`` with lo < hi.
        std_min: the floor added to the std.
    """

    support_is_binary = False

    def __init__(
        self,
        decoder: nn.Module,
        sigmoid_mean: bool = False,
        logvar_bounds: Sequence[float] | None = None,
        std_min: float = 1e-3,
    ) -> None:
        super().__init__()
        if logvar_bounds is not None:
            ok = len(logvar_bounds) == 2 and float(logvar_bounds[0]) < float(logvar_bounds[1])
            if not ok:
                raise ValueError(
                    f"logvar_bounds: expected None or (lo, hi) with lo < hi, got {logvar_bounds!r}"
                )
            logvar_bounds = (float(logvar_bounds[0]), float(logvar_bounds[1]))
        self.decoder, self.sigmoid_mean, self.logvar_bounds = decoder, sigmoid_mean, logvar_bounds
        self.std_min = std_min

    def loc_and_log_var(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The mean and the (bounded) log-variance at ``z``, each (..., D)."""
        loc, log_var = self.decoder(z).chunk(2, -1)
        if self.logvar_bounds is not None:
            log_var = log_var.clamp(*self.logvar_bounds)
        return _mean(loc, self.sigmoid_mean), log_var

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        return self.loc_and_log_var(z)[0]

    def forward(self, z: torch.Tensor) -> dist.Independent:
        loc, log_var = self.loc_and_log_var(z)
        return dist.Normal(loc, torch.exp(0.5 * log_var) + self.std_min).to_event(1)
