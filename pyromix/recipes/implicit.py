"""The VAE with the implicit optimal prior N(0, I) exp(T(z)), T by density ratio (Takahashi et al. 2019)."""

from __future__ import annotations

from torch import nn

from pyromix.guides import GaussianGuide
from pyromix.models import DensityRatioEstimator, ImplicitPriorVAE

from ..data import Dataset
from ..infer.density_ratio import DensityRatioSteps
from .blocks import build_encoder, build_likelihood, elbo_objective
from ..schema import PROBABILITY, Argument
from .registry import Recipe, register_recipe

__all__ = ["IOP_ARGUMENTS", "build_implicit_prior", "density_ratio_steps", "check_alternation"]

TAKAHASHI = "Takahashi et al. (2019)"
#: The discriminator T and its alternation with the VAE (Algorithm 1, 3.2, 5.2).
IOP_ARGUMENTS = (
    Argument(
        "vae_steps", int, 1, "J1: VAE steps between discriminator updates", low=1,
        reference=f"{TAKAHASHI}, Algorithm 1",
    ),
    Argument(
        "disc_steps", int, 10, "J2 > J1: discriminator steps per update", low=1,
        reference=f"{TAKAHASHI}, 5.2",
    ),
    Argument(
        "disc_batch_size", int, None, "the discriminator's batch size (None: --batch-size)",
        low=1, none=True,
    ),
    Argument(
        "disc_hidden", list[int], None, "T's hidden widths (None: as the encoder's)", low=1,
        none=True, reference=f"{TAKAHASHI}, 5.2",
    ),
    Argument(
        "disc_dropout", float, 0.5, "T's dropout", accepts=(PROBABILITY,),
        reference=f"{TAKAHASHI}, 5.2",
    ),
)


def check_alternation(args: dict) -> None:
    """T is trained more than the VAE (3.2): J2 > J1 at equal batch sizes; 5.2's "ten epochs of
    psi per epoch of theta, phi with M = N" is J2 M > J1 K with fewer, larger steps. A recipe's
    ``check``."""
    disc_batch = args["disc_batch_size"]
    if not args["disc_steps"] * (disc_batch or args["batch_size"]) > (
        args["vae_steps"] * args["batch_size"]
    ):
        raise ValueError(
            "disc_steps: expected the discriminator to see more samples than the VAE, "
            "disc_steps x disc_batch_size > vae_steps x batch_size (J2 > J1 at equal batch "
            f"sizes, Takahashi et al. (2019) 3.2), got disc_steps={args['disc_steps']}, "
            f"disc_batch_size={disc_batch}, vae_steps={args['vae_steps']}, "
            f"batch_size={args['batch_size']}"
        )


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
        arguments=IOP_ARGUMENTS,
        step_hooks=density_ratio_steps,
        check=check_alternation,
    ),
)
