"""VAEs with learned mixture priors: MG (seed 001) and the VampPrior (seed 004, eq. 9)."""

from __future__ import annotations

import torch
from torch import nn

from pyromix.guides import GaussianGuide
from pyromix.models import VAE, MixtureOfGaussiansPrior, VampPrior

from ..data import Dataset
from .blocks import build_encoder, build_likelihood, elbo_objective
from .registry import Recipe, register_recipe

__all__ = ["build_learned_prior", "place_pseudo_inputs"]


def build_learned_prior(args: dict, *, vamp: bool) -> tuple[nn.Module, nn.Module]:
    """A VAE whose prior is a learned mixture of ``components``: a mixture of Gaussians, or the
    VampPrior (the encoder's mixture at learned pseudo-inputs) with ``vamp=True``."""
    d, k = args["latent_dim"], args["components"]
    guide = GaussianGuide(build_encoder(args, d))
    if vamp:  # pseudo-inputs stay in [0, 1] for data in that range (seed 004, 5.2)
        unit = args["likelihood"] == "bernoulli" or args["image_shape"] is not None
        prior = VampPrior(guide.encoder, k, args["data_dim"], bounds=(0.0, 1.0) if unit else None)
    else:
        prior = MixtureOfGaussiansPrior(d, k)
    return VAE(build_likelihood(args, d), d, prior=prior), guide


def place_pseudo_inputs(model: nn.Module, guide: nn.Module, data: Dataset, args: dict) -> None:
    """Keep the VampPrior's pseudo-inputs in the data range and start them there.

    Images and binary data have [0, 1] from the start; other data get the training split's
    per-feature range, with fresh uniform pseudo-inputs in it. ``pseudo_init="data"`` starts them
    at random training points instead.
    """
    prior, x = model.prior, data.train.x
    unbounded = not torch.isfinite(prior.lower).all()
    if unbounded:
        prior.set_bounds(x.min(0).values, x.max(0).values)
    if args["pseudo_init"] == "data":
        generator = torch.Generator().manual_seed(args["seed"])
        start = x[torch.randint(len(x), (args["components"],), generator=generator).to(x.device)]
    elif unbounded:  # the draws made at build time were standard normal
        start = prior.random_inputs()
    else:
        return
    with torch.no_grad():
        prior.pseudo_inputs.copy_(start)


register_recipe(
    "mog",
    Recipe(
        "VAE with a learned mixture-of-Gaussians prior (K = --components), MG of seed 001",
        build=lambda args: build_learned_prior(args, vamp=False),
        objective=elbo_objective,
        defaults={"components": 10},
    ),
)
register_recipe(
    "vampprior",
    Recipe(
        "VAE with the VampPrior: encoder mixture at K learned pseudo-inputs (seed 004, eq. 9)",
        build=lambda args: build_learned_prior(args, vamp=True),
        objective=elbo_objective,
        defaults={"components": 50, "pseudo_init": "random"},
        initialize=place_pseudo_inputs,
    ),
)
