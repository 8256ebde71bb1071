"""VAEs with learned mixture priors: MG (Lavda et al. 2020), the VampPrior (Takahashi et al. 2019, eq. 9) and the
hierarchical VampPrior VAE (Tomczak & Welling 2018)."""

from __future__ import annotations

import torch
from torch import nn

from pyromix.guides import GaussianGuide, HierarchicalGuide
from pyromix.models import VAE, HierarchicalVAE, MixtureOfGaussiansPrior, VampPrior

from ..data import Dataset
from ..nn import NormalHead, glorot_init_, mlp
from .blocks import build_encoder, build_likelihood, elbo_objective
from ..schema import Argument
from .registry import Recipe, register_recipe

__all__ = ["PSEUDO_INIT", "build_learned_prior", "build_hvp", "place_pseudo_inputs", "components"]


def components(k: int, reference: str = "") -> Argument:
    """K, the prior's components, defaulting to ``k``."""
    return Argument("components", int, k, "prior components K", low=1, reference=reference)


#: Where the VampPrior's pseudo-inputs start.
PSEUDO_INIT = Argument(
    "pseudo_init",
    str,
    "random",
    "VampPrior pseudo-inputs start at random (in the data range) or at training points",
    choices=("random", "data"),
)


def build_learned_prior(args: dict, *, vamp: bool) -> tuple[nn.Module, nn.Module]:
    """A VAE whose prior is a learned mixture of ``components``: a mixture of Gaussians, or the
    VampPrior (the encoder's mixture at learned pseudo-inputs) with ``vamp=True``."""
    d, k = args["latent_dim"], args["components"]
    guide = GaussianGuide(build_encoder(args, d))
    if vamp:  # pseudo-inputs stay in [0, 1] for data in that range (Takahashi et al. 2019, 5.2)
        unit = args["likelihood"] == "bernoulli" or args["image_shape"] is not None
        prior = VampPrior(guide.encoder, k, args["data_dim"], bounds=(0.0, 1.0) if unit else None)
    else:
        prior = MixtureOfGaussiansPrior(d, k)
    return VAE(build_likelihood(args, d), d, prior=prior), guide


def build_hvp(args: dict) -> tuple[nn.Module, nn.Module]:
    """HVAE + VP (Tomczak & Welling 2018, 3.3): z1 and z2 both of size ``latent_dim``; the
    networks into z1 read [x, z2] and those into x read [z1, z2]."""
    d = args["latent_dim"]
    z2_encoder = build_encoder(args, d)
    joint = {**args, "data_dim": args["data_dim"] + d, "arch": "mlp"}
    z1_encoder = build_encoder(joint, d)
    z1_given_z2 = glorot_init_(NormalHead(mlp(d, args["hidden"], gated=args["gated"]), d))
    unit = args["likelihood"] == "bernoulli" or args["image_shape"] is not None
    prior = VampPrior(
        z2_encoder, args["components"], args["data_dim"], bounds=(0.0, 1.0) if unit else None
    )
    model = HierarchicalVAE(build_likelihood({**args, "arch": "mlp"}, 2 * d), z1_given_z2, d, prior)
    return model, HierarchicalGuide(z2_encoder, z1_encoder)


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
    "hvp",
    Recipe(
        "HVAE + VP: z2 ~ VampPrior, z1 | z2, x | z1, z2; q(z2|x) q(z1|x,z2) (Tomczak 2018)",
        build=build_hvp,
        objective=elbo_objective,
        arguments=(components(50), PSEUDO_INIT),
        initialize=place_pseudo_inputs,
    ),
)
register_recipe(
    "mog",
    Recipe(
        "VAE with a learned mixture-of-Gaussians prior (K = --components), MG of Lavda et al. (2020)",
        build=lambda args: build_learned_prior(args, vamp=False),
        objective=elbo_objective,
        arguments=(components(10, "Lavda et al. (2020), MG"),),
    ),
)
register_recipe(
    "vampprior",
    Recipe(
        "VAE with the VampPrior: encoder mixture at K learned pseudo-inputs (Takahashi et al. 2019, eq. 9)",
        build=lambda args: build_learned_prior(args, vamp=True),
        objective=elbo_objective,
        arguments=(components(50), PSEUDO_INIT),
        initialize=place_pseudo_inputs,
    ),
)
