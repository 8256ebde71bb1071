"""The VAE with an implicit optimal prior: N(0, I) tilted by a learned log density ratio.

References:
    Takahashi, Iwata, Yamanaka, Yamada & Yagi (2019), "Variational autoencoder with implicit
    optimal priors" (Takahashi et al. 2019), sections 3.1-3.2, eq. 10-21.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import pyro
import pyro.distributions as dist
import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from pyromix.infer.scale import prior_factor
from pyromix.nn import glorot_init_
from pyromix.sites import DATA_PLATE, X, Z

from .vae import VAE
from pyromix.schema import Interval, check_value

__all__ = ["LOG_RATIO", "DensityRatioEstimator", "ImplicitPriorVAE"]

LOG_RATIO = "log_ratio"


class DensityRatioEstimator(nn.Module):
    r"""``T_psi(z)``, the logit of a classifier of q(z) against N(0, I) samples (Takahashi et al. 2019, 5.2).

    At the optimum of the logistic loss (eq. 13), ``T*(z) = log q(z) / N(z; 0, I)`` (eq. 14).
    Hidden layers are ``tanh``; dropout regularises the fit (5.2: keep probability 0.5) and is
    applied only when asked for, by the discriminator's own training steps, so the ELBO and the
    evaluation see one deterministic ``T``.

    The GAN's discriminator is the same classifier on x, real (label 1) against generated
    (label 0), with leaky-ReLU layers (:class:`pyromix.models.GAN`).

    Arguments:
        latent_dim: size of z (of x for a GAN's discriminator).
        hidden: widths of the hidden layers (the paper: two of 500).
        dropout: drop probability after each hidden layer in training steps.
        activation: hidden non-linearity (Takahashi et al. 2019: tanh).

    Example:
        >>> T = DensityRatioEstimator(2, [8, 8])
        >>> T(torch.zeros(5, 3, 2)).shape
        torch.Size([5, 3])
    """

    def __init__(
        self,
        latent_dim: int,
        hidden: Sequence[int],
        dropout: float = 0.5,
        activation: Callable[[torch.Tensor], torch.Tensor] = torch.tanh,
    ) -> None:
        super().__init__()
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout}")
        widths = [latent_dim, *hidden]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))
        self.out = nn.Linear(widths[-1], 1)
        self.dropout, self.activation = dropout, activation
        glorot_init_(self)

    def forward(self, z: torch.Tensor, *, dropout: bool = False) -> torch.Tensor:
        """``T(z)`` with shape ``z.shape[:-1]``; ``dropout=True`` in discriminator training."""
        h = z
        for layer in self.hidden:
            h = F.dropout(self.activation(layer(h)), self.dropout, training=dropout)
        return self.out(h).squeeze(-1)


class ImplicitPriorVAE(VAE):
    r"""The generative story of the VAE with the implicit optimal prior (Takahashi et al. 2019, eq. 15-19)::

        z ~ p(z) proportional to N(z; 0, I) exp(T(z))   (T ~ log q(z) / N(z; 0, I), eq. 14)
        x | z ~ p(x | z)

    written as the standard VAE plus a factor ``T(z)`` on ``z ~ N(0, I)``. With the mean-field
    ELBO (analytic KL to N(0, I)) the objective is eq. 19:
    ``E_q[log p(x | z) + T(z)] - KL(q(z | x) || N(0, I))``. ``T``'s parameters enter the
    program as constants: the ELBO moves the encoder through z (pathwise) but never ``psi``,
    which the discriminator steps of Algorithm 1 train
    (:class:`pyromix.infer.DensityRatioSteps`); the dependence of ``T*`` on the encoder is
    ignored, as eq. 21 shows its expected gradient is zero.

    ``N(z; 0, I) exp(T(z))`` is an estimate of the aggregated posterior and integrates to 1 only
    when ``T`` is exact, so log-likelihoods computed with it are approximate (the paper's "≈",
    Table 2): :attr:`prior_is_approximate`.

    Arguments:
        likelihood: module mapping z to p(x | z), as for :class:`VAE`.
        latent_dim: size of z.
        ratio: ``T``, a module mapping z of shape ``(..., latent_dim)`` to ``(...)``, e.g. a
            :class:`DensityRatioEstimator`.

    Example:
        >>> from pyromix.likelihoods import BernoulliLikelihood
        >>> from pyromix.nn import mlp
        >>> model = ImplicitPriorVAE(
        ...     BernoulliLikelihood(mlp(2, [16], 4)), 2, DensityRatioEstimator(2, [16]))
        >>> model.generate(3).shape
        torch.Size([3, 4])
    """

    prior_is_approximate = True

    def __init__(self, likelihood: nn.Module, latent_dim: int, ratio: nn.Module) -> None:
        super().__init__(likelihood, latent_dim)
        self.ratio = ratio

    def log_ratio(self, z: torch.Tensor) -> torch.Tensor:
        """``T(z)`` with ``T``'s parameters as constants: gradients reach z, not ``psi``."""
        constants = {name: p.detach() for name, p in self.ratio.named_parameters()}
        return functional_call(self.ratio, constants, (z,))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        with pyro.plate(DATA_PLATE, x.shape[0]):
            z = pyro.sample(Z, self.prior())
            prior_factor(LOG_RATIO, self.log_ratio(z))
            return pyro.sample(X, self.likelihood(z), obs=x)

    @torch.no_grad()
    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """``log N(z; 0, I) + T(z)``, the (approximate) log-density of the implicit prior."""
        return self.prior().log_prob(z) + self.ratio(z)

    @torch.no_grad()
    def log_normalizer(self, num_samples: int = 100_000) -> float:
        r"""``log E_{N(0, I)}[exp(T(z))]``, Monte Carlo: how far the prior is from integrating to 1.

        Zero when ``T`` is an exact log density ratio (then ``E_N[q / N] = 1``); positive when
        ``T`` overestimates it, which raises the log-likelihoods and ELBOs computed with
        :meth:`log_prior` by about this much. A diagnostic, not used by the model.

        Arguments:
            num_samples: draws from N(0, I).
        """
        z = self.prior().sample((num_samples,))
        return float(torch.logsumexp(self.ratio(z), 0) - math.log(num_samples))

    @torch.no_grad()
    def sample_prior(
        self,
        n: int,
        component: int | None = None,
        *,
        weights: torch.Tensor | None = None,
        proposals: int = 100,
    ) -> torch.Tensor:
        r"""``n`` draws of z without data, by sampling-importance-resampling.

        ``proposals * n`` draws from N(0, I) are weighted by ``exp(T(z))`` (the density ratio
        of the aggregated posterior to N(0, I), eq. 14) and ``n`` of them are drawn with
        replacement in proportion to the weights: exact as ``proposals`` grows when ``T`` is.
        The paper's own sampler needs data (section 4): see
        :func:`pyromix.infer.aggregated_posterior_sample`.

        Arguments:
            n: number of samples.
            component, weights: must be None; the implicit prior is not a mixture.
            proposals: N(0, I) draws per returned sample.
        """
        if component is not None or weights is not None:
            raise ValueError(
                "component/weights: the implicit prior is not a mixture; leave them None"
            )
        check_value("proposals", proposals, Interval(int, 1))
        candidates = self.prior().sample((proposals * n,))
        index = dist.Categorical(logits=self.ratio(candidates)).sample((n,))
        return candidates[index]
