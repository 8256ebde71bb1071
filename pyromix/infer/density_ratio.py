"""The density-ratio trick for the implicit optimal prior: loss, q(z) samples, training steps.

References:
    Takahashi et al. (2019), Takahashi et al. (2019): eq. 11-14 (the trick), eq. 20 and Algorithm 1 (the
    alternating optimisation), section 5.2 (dropout, ten discriminator epochs per VAE epoch).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from pyro import poutine
from torch import nn
from torch.nn import functional as F

from pyromix.data import Dataset, binarize
from pyromix.sites import Z
from ..schema import Interval, check_value

__all__ = ["DensityRatioSteps", "aggregated_posterior_sample", "density_ratio_loss"]

DRAWS_PER_PASS = 10_000


def density_ratio_loss(
    ratio: Callable[[torch.Tensor], torch.Tensor], z_q: torch.Tensor, z_p: torch.Tensor
) -> torch.Tensor:
    r"""The logistic loss of the density-ratio trick, minus eq. 20.

    ``-(1/M) sum_i log sigma(T(z_q_i)) - (1/M) sum_j log(1 - sigma(T(z_p_j)))`` for samples
    ``z_q`` of q(z) (label 1) and ``z_p`` of p(z) (label 0); minimised over T at
    ``T*(z) = log q(z) / p(z)`` (eq. 12-14). ``log sigma(t) = -softplus(-t)`` keeps it finite for
    large ``|t|``.

    Arguments:
        ratio: ``T``, mapping ``(M, d)`` samples to ``(M,)`` logits.
        z_q: samples of the aggregated posterior q(z), shape ``(M, d)``.
        z_p: samples of the reference p(z), shape ``(M', d)``.

    Returns:
        A scalar tensor.

    Example:
        >>> zero = lambda z: z.new_zeros(z.shape[:-1])  # T = 0: sigma = 1/2 for every sample
        >>> round(float(density_ratio_loss(zero, torch.randn(4, 2), torch.randn(3, 2))), 4)
        1.3863
    """
    return F.softplus(-ratio(z_q)).mean() + F.softplus(ratio(z_p)).mean()


@torch.no_grad()
def aggregated_posterior_sample(
    guide: Callable[..., Any],
    x: torch.Tensor,
    n: int,
    *,
    generator: torch.Generator | None = None,
    dynamic_binarization: bool = False,
) -> torch.Tensor:
    r"""``n`` ancestral draws of the aggregated posterior ``q(z) = E_{p_D(x)}[q(z | x)]`` (eq. 6).

    Each draw picks a data point uniformly at random, then samples the guide's ``z`` for it
    (Takahashi et al. 2019, 3.1): the paper's way to sample q(z), and so its sampler for the implicit prior
    (section 4), which needs data.

    Arguments:
        guide: a guide with a ``"z"`` site taking ``x`` of shape ``(B, D)``.
        x: the data, shape ``(N, D)``.
        n: number of draws.
        generator: random source of the picks (and of the binarisation); the guide's draws use
            Pyro's.
        dynamic_binarization: binarise the picked points (intensities in [0, 1]) afresh, as the
            training batches of a dynamically binarised dataset are.

    Returns:
        Tensor of shape ``(n, d)``.

    Example:
        >>> import pyro.distributions as dist
        >>> import pyro
        >>> guide = lambda x: pyro.sample("z", dist.Normal(x, 1e-6).to_event(1))
        >>> z = aggregated_posterior_sample(guide, torch.eye(2), 5)
        >>> z.shape, bool(((z - z.round()).abs() < 1e-3).all())
        (torch.Size([5, 2]), True)
    """
    if n < 1:
        raise ValueError(f"n: expected an integer >= 1, got {n}")
    picks = torch.randint(x.shape[0], (n,), generator=generator).to(x.device)
    points = x[picks]
    if dynamic_binarization:
        points = binarize(points, generator)
    return poutine.trace(guide).get_trace(points).nodes[Z]["value"]


class DensityRatioSteps:
    r"""Algorithm 1's discriminator updates, as a step hook of :func:`pyromix.train.fit`.

    Called after every VAE optimiser step; after every ``vae_steps`` (J1) of them it takes
    ``disc_steps`` (J2) Adam steps on the loss of eq. 20, each on ``batch_size`` fresh draws of
    q(z) (:func:`aggregated_posterior_sample` from the training split) against as many of
    N(0, I), with dropout on. Takahashi et al. (2019) (5.2) trains T ten epochs per VAE epoch: J2 = 10 J1.

    Arguments:
        model: an :class:`pyromix.models.ImplicitPriorVAE` (its ``ratio`` is trained).
        guide: the encoder's guide, with a ``"z"`` site.
        data: the dataset whose training split q(z) aggregates over.
        vae_steps: J1 >= 1.
        disc_steps: J2 >= 1 (the paper: J2 > J1).
        batch_size: M, draws of each distribution per step.
        lr: Adam learning rate of the discriminator.
        seed: seeds the picks of training points.

    Example:
        >>> steps = DensityRatioSteps(model, guide, data, vae_steps=1, disc_steps=10,
        ...                           batch_size=100, lr=1e-3)  # doctest: +SKIP
        >>> fit(model, guide, data, TraceMeanField_ELBO(), step_hooks=[steps])  # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        guide: Callable[..., Any],
        data: Dataset,
        *,
        vae_steps: int,
        disc_steps: int,
        batch_size: int,
        lr: float,
        seed: int = 0,
    ) -> None:
        for name, value in (("vae_steps", vae_steps), ("disc_steps", disc_steps)):
            check_value(name, value, Interval(int, 1))
        self.ratio, self.guide, self.data = model.ratio, guide, data
        self.vae_steps, self.disc_steps, self.batch_size = vae_steps, disc_steps, batch_size
        self.optimizer = torch.optim.Adam(self.ratio.parameters(), lr=lr)
        self.generator = torch.Generator().manual_seed(seed)
        self.steps_seen = 0  # VAE steps since the last discriminator update
        self.losses: list[float] = []  # the loss of the last step of every update

    def parameters(self) -> Iterator[nn.Parameter]:
        """The parameters these steps train (and the ELBO leaves alone)."""
        return self.ratio.parameters()

    def __call__(self) -> None:
        self.steps_seen += 1
        if self.steps_seen == self.vae_steps:
            self.steps_seen = 0
            self.update()

    def update(self) -> None:
        """J2 discriminator steps on fresh samples (lines 7-12 of Algorithm 1)."""
        dropout = lambda z: self.ratio(z, dropout=True)
        # The encoder is fixed during the J2 steps, so several steps' q(z) draws share one
        # encoder pass, of at most DRAWS_PER_PASS points to bound memory (5.2 has M = N).
        steps_per_pass = max(1, DRAWS_PER_PASS // self.batch_size)
        for first in range(0, self.disc_steps, steps_per_pass):
            steps = min(steps_per_pass, self.disc_steps - first)
            z_q = aggregated_posterior_sample(
                self.guide,
                self.data.train.x,
                steps * self.batch_size,
                generator=self.generator,
                dynamic_binarization=self.data.binarize == "dynamic",
            )
            z_p = torch.randn_like(z_q)
            for q_batch, p_batch in zip(z_q.split(self.batch_size), z_p.split(self.batch_size)):
                self.optimizer.zero_grad(set_to_none=True)
                loss = density_ratio_loss(dropout, q_batch, p_batch)
                loss.backward()
                self.optimizer.step()
        self.losses.append(float(loss.detach()))

    def state_dict(self) -> dict[str, Any]:
        """Optimiser, RNG and step count, for exact resumption from a checkpoint."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "steps_seen": self.steps_seen,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.steps_seen = state["steps_seen"]
