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
from ..schema import Argument
from .arguments import CLUSTERS, common_argument
from .cpvae_warm_start import warm_start_cpvae
from .registry import Recipe, register_recipe

LAVDA = "Lavda et al. (2020)"
#: CP-VAE's arguments: the estimator for c, and the paper's networks and training.
CPVAE_ARGUMENTS = (
    CLUSTERS,
    Argument(
        "estimator",
        str,
        "gumbel",
        "the estimator for c: a Gumbel-softmax relaxation, or c summed out exactly",
        choices=("gumbel", "enum"),
        reference=f"{LAVDA}, 5",
    ),
    common_argument("latent_dim", default=40, reference=LAVDA),
    common_argument("hidden", default=[300, 300], reference=LAVDA),
    common_argument("gated", default=True, reference=LAVDA),
    common_argument("lr", default=5e-4, reference=LAVDA),
    common_argument("warmup", default=None, reference=f"{LAVDA} warm up 100 epochs"),
    Argument(
        "warm_start",
        bool,
        True,
        "start q(c|x) and p(z|c) from a GMM on a pretrained autoencoder's codes (the paper starts "
        "cold on 60,000 MNIST images; digits' 1,257 need the start)",
    ),
    Argument(
        "pretrain_epochs",
        int,
        100,
        "autoencoder epochs of the warm start",
        low=0,
    ),
)

__all__ = ["CPVAE_ARGUMENTS", "build_cpvae", "cpvae_objective", "temperature_annealing"]


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
        arguments=CPVAE_ARGUMENTS,
        schedules=temperature_annealing,
        initialize=warm_start_cpvae,
    ),
)
