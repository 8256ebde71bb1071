"""CP-VAE (Lavda et al. 2020): c ~ Cat(1/K), z | c ~ N(mu_c, sigma_c) learned, the decoder sees [z, c].

``warm_start`` (default on; the paper pretrains nothing, but trains on 60,000 MNIST images):
``pretrain_epochs`` of autoencoder training, a GMM on the codes, q(c | x) fitted to the GMM's
responsibilities and p(z | c) to the codes' moments (:mod:`pyromix.recipes.cpvae_warm_start`).
"""

from __future__ import annotations

from pyro.infer import ELBO, TraceMeanField_ELBO
from torch import nn

from pyromix.guides import GatedGuide
from pyromix.models import ConditionalPriorVAE

from ..infer.schedules import TemperatureAnnealing
from ..nn import glorot_init_
from .blocks import build_body, build_likelihood, enum_objective
from .cpvae_warm_start import warm_start_cpvae
from .registry import Recipe, register_recipe

__all__ = ["build_cpvae", "cpvae_objective", "temperature_annealing"]


def build_cpvae(args: dict) -> tuple[nn.Module, nn.Module]:
    """CP-VAE's model and gated guide; ``estimator`` is ``"gumbel"`` or ``"enum"`` for c."""
    k, d = args["clusters"], args["latent_dim"]
    model = ConditionalPriorVAE(build_likelihood(args, d + k), d, k)
    guide = GatedGuide(build_body(args), d, k, estimator=args["estimator"], std_min=args["std_min"])
    glorot_init_(guide)
    return model, guide


def cpvae_objective(args: dict) -> ELBO:
    """gumbel: the closed-form KLs of eq. 8-9 (pyromix.distributions) with a relaxed c in the
    reconstruction; enum: the bound of eq. 7 summed over c exactly."""
    if args["estimator"] == "enum":
        return enum_objective(args)
    return TraceMeanField_ELBO(num_particles=args["particles"])


def temperature_annealing(model: nn.Module, guide: nn.Module, args: dict) -> list:
    """The Gumbel-softmax temperature schedule (Lavda et al. 2020, 5), for the ``gumbel`` estimator."""
    if args["estimator"] != "gumbel":
        return []
    return [TemperatureAnnealing(guide, args["epochs"])]


register_recipe(
    "cpvae",
    Recipe(
        "CP-VAE: c ~ Cat(1/K), z | c ~ learned N(mu_c, sigma_c), decoder sees [z, c] (Lavda et al. 2020)",
        build=build_cpvae,
        objective=cpvae_objective,
        defaults={
            "clusters": None,
            "estimator": "gumbel",
            "latent_dim": 40,
            "hidden": [300, 300],
            "gated": True,
            "lr": 5e-4,
            "warmup": None,
            "warm_start": True,
            "pretrain_epochs": 100,
        },
        schedules=temperature_annealing,
        initialize=warm_start_cpvae,
    ),
)
