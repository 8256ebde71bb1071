"""Named recipes: model + guide + objective + schedules + defaults, as data.

A recipe's arguments are a plain dict (numbers, strings, lists) so that a checkpoint can store
them and rebuild the same model and guide. Later issues add entries to :data:`RECIPES`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from pyro.infer import ELBO, RenyiELBO, Trace_ELBO, TraceMeanField_ELBO
from torch import nn

from pyromix.guides import GaussianGuide
from pyromix.models import VAE

from .likelihoods import LIKELIHOODS
from .nn import ConvDecoder, ConvEncoder, NormalHead, glorot_init_, mlp

__all__ = ["Recipe", "RECIPES", "COMMON_DEFAULTS", "get_recipe", "build_encoder", "build_likelihood"]

COMMON_DEFAULTS: dict[str, Any] = {
    "latent_dim": 10,
    "hidden": [256, 256],
    "arch": "mlp",
    "gated": False,
    "likelihood": "auto",
    "std_min": 1e-3,
    "analytic_kl": True,
    "particles": 1,
    "epochs": 200,
    "batch_size": 100,
    "lr": 1e-3,
    "warmup": 0,
    "beta": 1.0,
    "patience": 30,
    "seed": 0,
}


@dataclass(frozen=True)
class Recipe:
    """How to build and train one named model.

    Attributes:
        description: one line for ``pyromix list``.
        build: ``args -> (model, guide)``; ``args`` holds ``data_dim`` and ``image_shape``.
        objective: ``args -> ELBO``.
        defaults: overrides of :data:`COMMON_DEFAULTS`.
        kl_weighted: whether warm-up and beta apply (the IWAE bound has no KL term to weight).
        schedules: ``(model, guide, args) -> [callable(epoch)]`` run by the trainer each epoch.
    """

    description: str
    build: Callable[[dict], tuple[nn.Module, nn.Module]]
    objective: Callable[[dict], ELBO]
    defaults: dict[str, Any] = field(default_factory=dict)
    kl_weighted: bool = True
    schedules: Callable[[nn.Module, nn.Module, dict], list] = lambda model, guide, args: []


def build_encoder(args: dict, out_dim: int) -> NormalHead:
    """x -> q(z | x) from the recipe's ``arch``, ``hidden`` and ``gated`` arguments."""
    if args["arch"] == "conv":
        body = ConvEncoder(args["image_shape"], args["hidden"][-1])
    else:
        body = mlp(args["data_dim"], args["hidden"], gated=args["gated"])
    return glorot_init_(NormalHead(body, out_dim))


def build_likelihood(args: dict, in_dim: int) -> nn.Module:
    """z -> p(x | z): decoder mirroring the encoder, with the named observation model."""
    if args["arch"] == "conv":
        decoder = ConvDecoder(in_dim, args["image_shape"])
    else:
        decoder = mlp(in_dim, list(reversed(args["hidden"])), args["data_dim"], gated=args["gated"])
    glorot_init_(decoder)
    if args["likelihood"] == "gaussian":
        return LIKELIHOODS["gaussian"](decoder, args["data_dim"], std_min=args["std_min"])
    return LIKELIHOODS["bernoulli"](decoder)


def _build_vae(args: dict) -> tuple[nn.Module, nn.Module]:
    model = VAE(build_likelihood(args, args["latent_dim"]), args["latent_dim"])
    return model, GaussianGuide(build_encoder(args, args["latent_dim"]))


def _elbo(args: dict) -> ELBO:
    return TraceMeanField_ELBO() if args["analytic_kl"] else Trace_ELBO(args["particles"])


def _iwae_bound(args: dict) -> ELBO:
    # RenyiELBO with alpha = 0 is the k-sample importance-weighted bound, per data point: it
    # sums log weights over dependent dims only and keeps the data plate (Burda et al. 2016).
    return RenyiELBO(
        alpha=0.0, num_particles=args["particles"], vectorize_particles=True, max_plate_nesting=1
    )


RECIPES: dict[str, Recipe] = {
    "vae": Recipe(
        "VAE: z ~ N(0, I), Gaussian encoder, ELBO with analytic or Monte-Carlo KL",
        build=_build_vae,
        objective=_elbo,
    ),
    "iwae": Recipe(
        "IWAE: the VAE's networks trained on the k-sample importance-weighted bound",
        build=_build_vae,
        objective=_iwae_bound,
        defaults={"particles": 5},
        kl_weighted=False,
    ),
}


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``, or a ValueError listing the valid names."""
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"model: unknown recipe {name!r}; choose from {', '.join(RECIPES)}") from None
