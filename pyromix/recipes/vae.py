"""The VAE and the IWAE: z ~ N(0, I) or a flow prior, a Gaussian or IAF encoder; the ELBO or the
k-sample bound."""

from __future__ import annotations

from typing import Any

from torch import nn

from pyromix.guides import GaussianGuide, IAFGuide
from pyromix.models import VAE, FlowPrior

from ..flows import flow_stack, iaf_stack
from .blocks import (
    build_encoder,
    build_likelihood,
    elbo_objective,
    iwae_objective,
)
from ..schema import Argument, validate
from .arguments import common_argument
from .registry import Recipe, register_recipe

__all__ = ["VAE_FLOW_ARGUMENTS", "VAE_FLOW_DEFAULTS", "build_vae"]

#: Flows in the VAE (--guide iaf, --prior flow): K = ``flows`` transforms whose conditioner
#: networks are as wide as the encoder.
VAE_FLOW_ARGUMENTS = (
    Argument(
        "guide",
        str,
        "gaussian",
        "q(z|x): Gaussian, or Gaussian + K IAF steps",
        choices=("gaussian", "iaf"),
        reference="Kingma et al. (2016), IAF",
    ),
    Argument(
        "prior", str, "normal", "p(z): N(0, I), or a K-layer flow on it", choices=("normal", "flow")
    ),
    Argument("flows", int, 2, "K flow layers of --guide iaf or --prior flow", low=1),
)
VAE_FLOW_DEFAULTS: dict[str, Any] = {a.name: a.default for a in VAE_FLOW_ARGUMENTS}


def build_vae(args: dict) -> tuple[nn.Module, nn.Module]:
    """The VAE (Kingma & Welling 2014), with an IAF posterior (Kingma et al. 2016) and/or a flow
    prior if ``args`` ask for them (``guide="iaf"``, ``prior="flow"``, ``flows`` layers)."""
    args = {**VAE_FLOW_DEFAULTS, **args}  # runs saved before the flow options rebuild as they were
    validate({a.name: a for a in VAE_FLOW_ARGUMENTS}, args)  # also when called directly
    d = args["latent_dim"]
    prior = None
    if args["prior"] == "flow":
        kind = "coupling" if d >= 2 else "spline"
        prior = FlowPrior(flow_stack(d, args["flows"], args["hidden"], kind), d)
    model = VAE(build_likelihood(args, d), d, prior=prior)
    encoder = build_encoder(args, d)
    if args["guide"] == "iaf":
        flows = iaf_stack(d, encoder.body.out_features, args["flows"], args["hidden"])
        return model, IAFGuide(encoder, flows)
    return model, GaussianGuide(encoder)


register_recipe(
    "vae",
    Recipe(
        "VAE: z ~ N(0, I) (--prior flow: a flow), Gaussian (--guide iaf: IAF) encoder, ELBO",
        build=build_vae,
        objective=elbo_objective,
        arguments=VAE_FLOW_ARGUMENTS,
    ),
)
register_recipe(
    "iwae",
    Recipe(
        "IWAE: the VAE's networks trained on the k-sample importance-weighted bound",
        build=build_vae,
        objective=iwae_objective,
        arguments=(
            *VAE_FLOW_ARGUMENTS,
            common_argument("particles", default=5, reference="Burda et al. (2016), k = 5"),
        ),
        kl_weighted=False,
    ),
)
