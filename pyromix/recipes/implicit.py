"""The VAE with the implicit optimal prior N(0, I) exp(T(z)), T by density ratio (Takahashi et al. 2019)."""

from __future__ import annotations

from torch import nn

from pyromix.guides import GaussianGuide
from pyromix.models import DensityRatioEstimator, ImplicitPriorVAE

from ..data import Dataset
from ..infer.density_ratio import DensityRatioSteps
from .blocks import build_encoder, build_likelihood, elbo_objective
from .registry import Recipe, register_recipe

__all__ = ["build_implicit_prior", "density_ratio_steps"]


def build_implicit_prior(args: dict) -> tuple[nn.Module, nn.Module]:
    """The model with T as wide as the encoder (Takahashi et al. 2019, 5.2) unless ``disc_hidden`` says."""
    d = args["latent_dim"]
    ratio = DensityRatioEstimator(d, args["disc_hidden"] or args["hidden"], args["disc_dropout"])
    model = ImplicitPriorVAE(build_likelihood(args, d), d, ratio)
    return model, GaussianGuide(build_encoder(args, d))


def density_ratio_steps(model: nn.Module, guide: nn.Module, data: Dataset, args: dict) -> list:
    """The discriminator's steps between VAE steps (Takahashi et al. 2019, Algorithm 1). A recipe's
    ``step_hooks``."""
    steps = DensityRatioSteps(
        model,
        guide,
        data,
        vae_steps=args["vae_steps"],
        disc_steps=args["disc_steps"],
        batch_size=args["disc_batch_size"] or args["batch_size"],
        lr=args["lr"],
        seed=args["seed"],
    )
    return [steps]


register_recipe(
    "iop",
    Recipe(
        "VAE with the implicit optimal prior N(0, I) exp(T(z)), T by density ratio (Takahashi et al. 2019)",
        build=build_implicit_prior,
        objective=elbo_objective,
        defaults={
            "vae_steps": 1,
            "disc_steps": 10,
            "disc_batch_size": None,
            "disc_hidden": None,
            "disc_dropout": 0.5,
        },
        step_hooks=density_ratio_steps,
    ),
)
