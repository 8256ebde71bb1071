"""CP-VAE's gated encoder: q(c | x) first, then q(z | x, c) from the features and pi(x)."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from torch import nn

from pyromix.distributions import GatedNormal, GumbelSoftmax
from pyromix.local_params import LocalModule
from pyromix.nn import NormalHead, mlp
from pyromix.sites import DATA_PLATE, Y, Z
from pyromix.schema import Interval, Options, check_value

__all__ = ["GatedGuide", "ESTIMATORS"]

ESTIMATORS = ("gumbel", "enum")


class GatedGuide(LocalModule):
    r"""``q(c, z | x) = q(c | x) q(z | x, c)`` with the gated encoder of Lavda et al. (2020) (3.2, Fig. 2)::

        pi = softmax(W h(x))                         q(c | x) = Cat(pi)
        mu, sigma = heads(gated([h(x), pi]))         q(z | x, c) = N(mu, diag sigma^2)

    The z heads read pi, not the sampled c, so q(z | x, c) is one Gaussian for every c.

    ``estimator`` chooses how c enters the objective:

    - ``"gumbel"`` (the paper's, eq. 11): while training, c is a Gumbel-softmax relaxed one-hot
      at ``temperature`` (annealed by a schedule); with ``TraceMeanField_ELBO`` the KL terms are
      the closed forms of eq. 8-9 (see :mod:`pyromix.distributions`) and the relaxed c only
      feeds the decoder. In eval mode c is an exact one-hot draw, so validation losses and
      importance weights are those of the discrete model.
    - ``"enum"``: c is enumerated in parallel; ``TraceEnum_ELBO`` sums the bound of eq. 7 over
      the K categories exactly.

    Arguments:
        body: network mapping x to features h, with an ``out_features`` attribute.
        latent_dim: size of z.
        num_categories: K.
        estimator: ``"gumbel"`` or ``"enum"``.
        temperature: Gumbel-softmax temperature (``"gumbel"`` only).
        std_min: lower bound on sigma.

    References:
        Lavda, Gregorova & Kalousis, CP-VAE (Lavda et al. 2020), 3.2-3.3. Jang et al. (2017).
    """

    def __init__(
        self,
        body: nn.Module,
        latent_dim: int,
        num_categories: int,
        *,
        estimator: str = "gumbel",
        temperature: float = 1.0,
        std_min: float = 0.0,
    ) -> None:
        super().__init__()
        check_value("estimator", estimator, Options(*ESTIMATORS))
        check_value("temperature", temperature, Interval(float, 0, closed="right"))
        width = body.out_features
        self.body = body
        self.latent_dim, self.num_clusters = latent_dim, num_categories
        self.estimator, self.temperature = estimator, temperature
        self.category_logits = nn.Linear(width, num_categories)
        gate = mlp(width + num_categories, [width], gated=True)
        self.encoder = NormalHead(gate, latent_dim, std_min)

    def _posteriors(self, x: torch.Tensor) -> tuple[torch.Tensor, GatedNormal]:
        h = self.body(x)
        logits = self.category_logits(h)
        probs = torch.softmax(logits, -1)
        q_z = self.encoder(torch.cat([h, probs], -1)).base_dist
        return logits, GatedNormal(q_z.loc, q_z.scale, probs)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        logits, q_z = self._posteriors(x)
        with pyro.plate(DATA_PLATE, x.shape[0]):
            if self.estimator == "enum":
                q_c = dist.OneHotCategorical(logits=logits)
                pyro.sample(Y, q_c, infer={"enumerate": "parallel"})
            elif self.training:
                pyro.sample(Y, GumbelSoftmax(self.temperature, logits))
            else:  # exact one-hot draws; straight-through only so the ELBO accepts the site
                pyro.sample(Y, dist.OneHotCategoricalStraightThrough(logits=logits))
            return pyro.sample(Z, q_z)

    @torch.no_grad()
    def cluster_probs(self, x: torch.Tensor) -> torch.Tensor:
        """q(c | x) = pi(x), shape (N, K): the clustering readout (Lavda et al. 2020, 5.2)."""
        return torch.softmax(self.category_logits(self.body(x)), -1)

    @torch.no_grad()
    def latent_mean(self, x: torch.Tensor) -> torch.Tensor:
        """E_q[z | x] = mu(x, pi)."""
        return self._posteriors(x)[1].loc
