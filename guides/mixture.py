"""Guides for the Gaussian-mixture VAE: q(y | x) with q(z | x, y), or the mean-field q(z | x)."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro.ops.indexing import Vindex
from torch import nn

from pyromix.local_params import LocalModule
from pyromix.nn import positive
from pyromix.sites import DATA_PLATE, Y, Z
from pyromix.schema import Options, check_value

__all__ = ["Y_MODES", "ClusterEncoder", "MixtureGuide"]

Y_MODES = ("enumerate", "sample")


class ClusterEncoder(LocalModule):
    r"""The per-cluster Gaussian heads ``q(z | x, y)`` for all K clusters at once, shared by guides.

    A shared body maps x to features h. ``q(z | x, y)`` has mean ``A h + a + B_y h + b_y`` and std
    ``softplus(C_y h + c_y) + std_min``: a shared linear map plus one per cluster, which equals a
    linear layer on ``h (x) one_hot(y)`` but evaluates all K clusters in one matrix product. The
    per-cluster offsets start at zero, so autoencoder pretraining of the shared map
    (:meth:`autoencoder`) initialises every cluster (Li et al. 2020, III-B). With ``mean_field`` the
    heads ignore y (one head, the ablation of Li et al. (2020), Table II). Subclasses add the y site.

    Arguments:
        body: network mapping x to features, with an ``out_features`` attribute.
        latent_dim: size of z.
        num_clusters: K.
        mean_field: q(z | x) instead of q(z | x, y).
        std_min: lower bound on the std of q(z | ...) (Li et al. 2020's eps_z; std annealing lowers it).
    """

    def __init__(
        self,
        body: nn.Module,
        latent_dim: int,
        num_clusters: int,
        *,
        mean_field: bool = False,
        std_min: float = 0.0,
    ) -> None:
        super().__init__()
        width = body.out_features
        self.body = body
        self.latent_dim, self.num_clusters = latent_dim, num_clusters
        self.mean_field, self.std_min = mean_field, std_min
        per_cluster = 1 if mean_field else num_clusters
        self.loc = nn.Linear(width, latent_dim)
        self.loc_offset = nn.Linear(width, per_cluster * latent_dim)
        self.raw_scale = nn.Linear(width, per_cluster * latent_dim)
        nn.init.zeros_(self.loc_offset.weight), nn.init.zeros_(self.loc_offset.bias)

    def _heads(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Means and stds for every cluster, shape (..., K or 1, latent_dim)."""
        shape = (*h.shape[:-1], -1, self.latent_dim)
        loc = self.loc(h).unsqueeze(-2) + self.loc_offset(h).reshape(shape)
        return loc, positive(self.raw_scale(h).reshape(shape), self.std_min)

    def autoencoder(self, x: torch.Tensor) -> torch.Tensor:
        """The deterministic encoder ``A h(x) + a`` trained by autoencoder pretraining."""
        return self.loc(self.body(x))


class MixtureGuide(ClusterEncoder):
    r"""``q(y, z | x) = q(y | x) q(z | x, y)`` (Li et al. 2020, eq. 3-4), or mean field q(y | x) q(z | x).

    ``q(y | x) = Cat(softmax(W_y h))`` on the shared features h, and the structured
    ``q(z | x, y)`` of :class:`ClusterEncoder`. With ``mean_field`` z ignores y (the ablation of
    Li et al. (2020), Table II).

    ``y_mode="enumerate"`` marks y for parallel enumeration (EnumY, with ``TraceEnum_ELBO``,
    eq. 5); ``"sample"`` draws it (VIMCO, eq. 7, or NVIL with ``baseline``, eq. 6).

    Arguments:
        body: network mapping x to features, with an ``out_features`` attribute.
        latent_dim: size of z.
        num_clusters: K.
        y_mode: ``"enumerate"`` or ``"sample"``.
        mean_field: q(z | x) instead of q(z | x, y).
        std_min: lower bound on the std of q(z | ...) (Li et al. 2020's eps_z; std annealing lowers it).
        baseline: optional NVIL baseline network x -> (N,) used by ``TraceGraph_ELBO`` for y.
    """

    def __init__(
        self,
        body: nn.Module,
        latent_dim: int,
        num_clusters: int,
        *,
        y_mode: str = "enumerate",
        mean_field: bool = False,
        std_min: float = 0.0,
        baseline: nn.Module | None = None,
    ) -> None:
        check_value("y_mode", y_mode, Options(*Y_MODES))
        if baseline is not None and y_mode != "sample":
            raise ValueError("baseline: an NVIL baseline needs y_mode='sample'")
        # Built before the z heads, so a seed gives the same initial weights as before the heads
        # moved into ClusterEncoder (and reruns reproduce earlier benchmark numbers).
        y_logits = nn.Linear(body.out_features, num_clusters)
        super().__init__(body, latent_dim, num_clusters, mean_field=mean_field, std_min=std_min)
        self.y_mode, self.baseline, self.y_logits = y_mode, baseline, y_logits

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.body(x)
        loc, scale = self._heads(h)
        infer = {"enumerate": "parallel"} if self.y_mode == "enumerate" else {}
        if self.baseline is not None:
            infer = {"baseline": {"nn_baseline": self.baseline, "nn_baseline_input": x}}
        with pyro.plate(DATA_PLATE, x.shape[0]):
            y = pyro.sample(Y, dist.Categorical(logits=self.y_logits(h)), infer=infer)
            if self.mean_field:
                loc, scale = loc.squeeze(-2), scale.squeeze(-2)
            else:  # pick cluster y's head; y may carry enumeration or particle dims on the left
                loc, scale = Vindex(loc)[..., y, :], Vindex(scale)[..., y, :]
            return pyro.sample(Z, dist.Normal(loc, scale).to_event(1))

    @torch.no_grad()
    def cluster_probs(self, x: torch.Tensor) -> torch.Tensor:
        """q(y | x), shape (N, K): the clustering readout (argmax is the cluster)."""
        return torch.softmax(self.y_logits(self.body(x)), -1)

    @torch.no_grad()
    def latent_mean(self, x: torch.Tensor) -> torch.Tensor:
        """E_q[z | x] = sum_y q(y | x) mu(x, y): the representation clustered by the latent GMM."""
        h = self.body(x)
        loc, _ = self._heads(h)
        weights = torch.softmax(self.y_logits(h), -1)
        return loc.squeeze(-2) if self.mean_field else (weights.unsqueeze(-1) * loc).sum(-2)
