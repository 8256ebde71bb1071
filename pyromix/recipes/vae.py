"""The VAE and the IWAE: z ~ N(0, I), a Gaussian encoder; the ELBO or the k-sample bound."""

from __future__ import annotations

from torch import nn

from pyromix.guides import GaussianGuide
from pyromix.models import VAE

from .blocks import build_encoder, build_likelihood, elbo_objective, iwae_objective
from .registry import Recipe, register_recipe

__all__ = ["build_vae"]


def build_vae(args: dict) -> tuple[nn.Module, nn.Module]:
    """The VAE's model and guide for ``args`` (Kingma & Welling 2014, Appendix C)."""
    model = VAE(build_likelihood(args, args["latent_dim"]), args["latent_dim"])
    return model, GaussianGuide(build_encoder(args, args["latent_dim"]))


register_recipe(
    "vae",
    Recipe(
        "VAE: z ~ N(0, I), Gaussian encoder, ELBO with analytic or Monte-Carlo KL",
        build=build_vae,
        objective=elbo_objective,
    ),
)
register_recipe(
    "iwae",
    Recipe(
        "IWAE: the VAE's networks trained on the k-sample importance-weighted bound",
        build=build_vae,
        objective=iwae_objective,
        defaults={"particles": 5},
        kl_weighted=False,
    ),
)
