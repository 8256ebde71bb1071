"""The Gaussian-mixture VAE: a categorical cluster y above the continuous latent z."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroParam
from torch import nn
from torch.nn import functional as F

from pyromix.local_params import LocalModule
from pyromix.nn import positive
from pyromix.sites import DATA_PLATE, X, Y, Z
from pyromix.schema import Interval, check_value

__all__ = ["GaussianMixtureVAE", "check_weights", "component_indices", "with_category"]


class GaussianMixtureVAE(LocalModule):
    r"""The generative story of the Gaussian-mixture VAE (Li et al. 2020, eq. 1-2; Chowdhury et al., VaDE)::

        y ~ Cat(pi)                          (uniform unless ``learn_weights``)
        z | y ~ N(mu_y, diag sigma_y^2)      (learned; sigma = softplus(.) + prior_std_min)
        x | z ~ p(x | z)                     (or x | z, y when ``decoder_sees_y``)

    With ``marginalize_y`` the model sums y out exactly, ``z ~ sum_y pi_y N(mu_y, sigma_y)``, and
    has no ``"y"`` site: the VaDE form, trained with a z-only guide; the cluster posterior is then
    :meth:`cluster_posterior` (Chowdhury et al., eq. 16-17). Otherwise ``"y"`` is a latent site that a
    guide either enumerates (EnumY, with ``TraceEnum_ELBO``) or samples (NVIL, VIMCO).

    Arguments:
        likelihood: maps z (or ``[z, one_hot(y)]``) to a distribution over x, with ``mean``.
        latent_dim: size of z.
        num_clusters: K.
        learn_weights: learn the mixture weights pi instead of keeping them uniform.
        prior_std_min: lower bound on sigma_y (NVISA uses 1: the prior at least a unit Gaussian).
        decoder_sees_y: the decoder reads ``[z, one_hot(y)]`` (the CP-VAE decoder, Lavda et al. (2020)).
        marginalize_y: sum y out in the model (VaDE).

    References:
        Li et al., NVISA (Li et al. 2020), eq. 1-2 and II-A. Jiang et al. 2017, VaDE.
    """

    def __init__(
        self,
        likelihood: nn.Module,
        latent_dim: int,
        num_clusters: int,
        *,
        learn_weights: bool = False,
        prior_std_min: float = 0.0,
        decoder_sees_y: bool = False,
        marginalize_y: bool = False,
    ) -> None:
        super().__init__()
        check_value("num_clusters", num_clusters, Interval(int, 1))
        if decoder_sees_y and marginalize_y:
            raise ValueError(
                "decoder_sees_y needs a y site; it cannot be combined with marginalize_y"
            )
        self.likelihood = likelihood
        self.latent_dim, self.num_clusters = latent_dim, num_clusters
        self.prior_std_min, self.learn_weights = prior_std_min, learn_weights
        self.decoder_sees_y, self.marginalize_y = decoder_sees_y, marginalize_y
        self.loc = PyroParam(torch.randn(num_clusters, latent_dim))
        self.raw_scale = PyroParam(torch.zeros(num_clusters, latent_dim))
        if learn_weights:
            self.logits = PyroParam(torch.zeros(num_clusters))
        else:
            self.register_buffer("logits", torch.zeros(num_clusters))

    @property
    def scale(self) -> torch.Tensor:
        return positive(self.raw_scale, self.prior_std_min)

    def cluster_prior(self) -> dist.Categorical:
        """p(y) = Cat(pi)."""
        return dist.Categorical(logits=self.logits)

    def component(self, y: torch.Tensor) -> dist.Independent:
        """p(z | y) for cluster indices of any shape (enumerated, sampled or per particle)."""
        return dist.Normal(self.loc[y], self.scale[y]).to_event(1)

    def prior(self) -> dist.MixtureSameFamily:
        """p(z) with y summed out."""
        components = dist.Normal(self.loc, self.scale).to_event(1)
        return dist.MixtureSameFamily(self.cluster_prior(), components)

    def decoder_input(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """What the decoder reads: z, or ``[z, one_hot(y)]`` when ``decoder_sees_y``."""
        if not self.decoder_sees_y:
            return z
        return with_category(z, self.one_hot(y))

    def one_hot(self, y: torch.Tensor) -> torch.Tensor:
        """The one-hot vector of a ``"y"`` site value (here an index)."""
        return F.one_hot(y, self.num_clusters)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        with pyro.plate(DATA_PLATE, x.shape[0]):
            if self.marginalize_y:
                z = pyro.sample(Z, self.prior())
            else:
                y = pyro.sample(Y, self.cluster_prior(), obs=y)
                z = pyro.sample(Z, self.component(y))
            return pyro.sample(X, self.likelihood(self.decoder_input(z, y)), obs=x)

    def cluster_posterior(self, z: torch.Tensor) -> torch.Tensor:
        r"""p(y | z) = pi_y N(z; mu_y, sigma_y) / sum_k pi_k N(z; mu_k, sigma_k), shape (..., K).

        The VaDE cluster readout (Chowdhury et al., eq. 16-17), computed in log space.
        """
        components = dist.Normal(self.loc, self.scale).to_event(1)
        log_joint = components.log_prob(z.unsqueeze(-2)) + self.cluster_prior().logits
        return torch.softmax(log_joint, -1)

    def category(self, index: torch.Tensor) -> torch.Tensor:
        """The value of the ``"y"`` site for cluster indices (the index itself here)."""
        return index

    @torch.no_grad()
    def generate(
        self,
        n: int,
        *,
        mean: bool = True,
        component: int | None = None,
        weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Ancestral samples: y from p(y), from ``weights``, or fixed at cluster ``component``.

        Arguments:
            n: number of samples.
            mean: decode to the likelihood's mean instead of a draw of x.
            component: draw every sample from this cluster.
            weights: probabilities (K,) to draw y from instead of p(y), e.g. the aggregated
                posterior q(y) of Lavda et al. (2020), eq. 14.
        """
        device = self.logits.device
        index = component_indices(
            n, self.num_clusters, device, component=component, weights=weights
        )
        if index is None:
            index = dist.Categorical(logits=self.logits).sample((n,))
        y = self.category(index.to(device))
        z = self.component(y).sample()
        h = self.decoder_input(z, y)
        return self.likelihood.mean(h) if mean else self.likelihood(h).sample()


def with_category(h: torch.Tensor, one_hot: torch.Tensor) -> torch.Tensor:
    """``[h, one_hot]`` on the last dim, broadcasting the enumerated or particle dims of either.

    Example:
        >>> with_category(torch.zeros(4, 2), torch.eye(3)[:, None]).shape  # 3 enumerated values
        torch.Size([3, 4, 5])
    """
    one_hot = one_hot.to(h.dtype)
    batch = torch.broadcast_shapes(h.shape[:-1], one_hot.shape[:-1])
    return torch.cat([h.expand(*batch, -1), one_hot.expand(*batch, -1)], -1)


def component_indices(
    n: int,
    k: int,
    device: torch.device | str,
    *,
    component: int | None = None,
    weights: torch.Tensor | None = None,
) -> torch.Tensor | None:
    """The mixture component of ``n`` draws: all ``component``, or drawn with ``weights``.

    None when both are None (the caller draws from its own p(c)); a ValueError for a component
    outside ``[0, k)`` or bad weights.
    """
    if component is not None:
        if not 0 <= component < k:
            raise ValueError(f"component: expected 0 <= component < {k}, got {component}")
        return torch.full((n,), component, dtype=torch.long, device=device)
    if weights is not None:
        return dist.Categorical(probs=check_weights(weights, k)).sample((n,)).to(device)
    return None


def check_weights(weights: torch.Tensor, k: int) -> torch.Tensor:
    """``weights`` as probabilities over K categories, or a ValueError saying what is wrong."""
    weights = torch.as_tensor(weights)
    if (
        weights.shape != (k,)
        or not torch.isfinite(weights).all()
        or (weights < 0).any()
        or weights.sum() <= 0
    ):
        raise ValueError(
            f"weights: expected {k} finite non-negative numbers with a positive sum, got "
            f"{weights.tolist() if weights.numel() <= 10 else tuple(weights.shape)}"
        )
    return weights / weights.sum()
