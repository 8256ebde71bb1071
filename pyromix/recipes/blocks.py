"""Building blocks of recipes: default arguments, networks from arguments, objectives.

A recipe's arguments are a plain dict (numbers, strings, lists, typed by
:mod:`pyromix.recipes.arguments`) so that a checkpoint can store them and rebuild the same model
and guide. Every builder here takes that dict; the shipped
recipes are made of these and nothing private, as a plugin would be.
"""

from __future__ import annotations

from typing import Any

from pyro.infer import ELBO, RenyiELBO, Trace_ELBO, TraceEnum_ELBO, TraceMeanField_ELBO
from torch import nn

from ..likelihoods import make_likelihood
from ..nn import ConvDecoder, ConvEncoder, NormalHead, glorot_init_, mlp
from ..schema import Interval, Options, check_value
from .arguments import COMMON_ARGUMENTS

__all__ = [
    "COMMON_DEFAULTS",
    "check_choice",
    "check_flows",
    "build_body",
    "build_encoder",
    "build_likelihood",
    "elbo_objective",
    "iwae_objective",
    "enum_objective",
    "vimco_objective",
]

#: The defaults of :data:`pyromix.recipes.arguments.COMMON_ARGUMENTS`: the training, network,
#: likelihood and data arguments every recipe starts from (a recipe's own defaults win).
COMMON_DEFAULTS: dict[str, Any] = {a.name: a.default for a in COMMON_ARGUMENTS}


def check_choice(args: dict, key: str, choices: tuple) -> None:
    """ValueError naming ``key`` unless ``args[key]`` is one of ``choices``."""
    check_value(key, args[key], Options(*choices))


def check_flows(args: dict) -> None:
    """ValueError unless ``args["flows"]``, a number of flow layers, is an integer >= 1."""
    check_value("flows", args["flows"], Interval(int, 1))


def build_body(args: dict) -> nn.Module:
    """x -> features: an MLP (``arch="mlp"``, widths ``hidden``, ``gated`` dense layers) or a
    small conv net (``arch="conv"``, needs ``image_shape``) with ``hidden[-1]`` outputs.

    Arguments:
        args: the recipe's arguments, with ``data_dim`` and ``image_shape`` filled in.

    Returns:
        A Glorot-initialised module mapping (..., data_dim) to (..., hidden[-1]).

    Example:
        >>> import torch
        >>> body = build_body({**COMMON_DEFAULTS, "data_dim": 64, "image_shape": None})
        >>> body(torch.zeros(3, 64)).shape
        torch.Size([3, 256])
    """
    if args["arch"] == "conv":
        return glorot_init_(ConvEncoder(args["image_shape"], args["hidden"][-1]))
    return glorot_init_(mlp(args["data_dim"], args["hidden"], gated=args["gated"]))


def build_encoder(args: dict, out_dim: int) -> NormalHead:
    """x -> q(z | x) = N(mu(x), diag sigma(x)^2) over ``out_dim`` dimensions, on
    :func:`build_body`.

    Example:
        >>> import torch
        >>> q = build_encoder({**COMMON_DEFAULTS, "data_dim": 64, "image_shape": None}, 2)
        >>> q(torch.zeros(3, 64)).event_shape
        torch.Size([2])
    """
    return glorot_init_(NormalHead(build_body(args), out_dim))


def build_likelihood(args: dict, in_dim: int) -> nn.Module:
    """z -> p(x | z): a decoder mirroring the encoder with the ``likelihood`` observation model
    (:func:`pyromix.likelihoods.make_likelihood`); it also has ``.mean(z)``.

    Example:
        >>> import torch
        >>> p = build_likelihood({**COMMON_DEFAULTS, "data_dim": 64, "image_shape": None}, 2)
        >>> p(torch.zeros(3, 2)).event_shape, p.mean(torch.zeros(3, 2)).shape
        (torch.Size([64]), torch.Size([3, 64]))
    """

    def make_decoder(per_dim: int) -> nn.Module:
        if args["arch"] == "conv":
            return glorot_init_(ConvDecoder(in_dim, args["image_shape"], out_channels=per_dim))
        hidden = list(reversed(args["hidden"]))
        return glorot_init_(mlp(in_dim, hidden, per_dim * args["data_dim"], gated=args["gated"]))

    return make_likelihood(args, make_decoder)


def elbo_objective(args: dict) -> ELBO:
    """The ELBO: analytic KL where Pyro has it (``analytic_kl``), else Monte-Carlo with
    ``particles`` samples (Kingma & Welling 2014, eq. 10 and eq. 7)."""
    return TraceMeanField_ELBO() if args["analytic_kl"] else Trace_ELBO(args["particles"])


def iwae_objective(args: dict) -> ELBO:
    """The ``particles``-sample importance-weighted bound (Burda et al. 2016, eq. 8).

    RenyiELBO with alpha = 0 is that bound per data point: it sums log weights over dependent
    dims only and keeps the data plate. It needs reparameterised latent sites.
    """
    return RenyiELBO(
        alpha=0.0, num_particles=args["particles"], vectorize_particles=True, max_plate_nesting=1
    )


def enum_objective(args: dict) -> ELBO:
    """TraceEnum_ELBO: discrete sites marked ``infer={"enumerate": "parallel"}`` are summed out
    exactly (Li et al. 2020's EnumY)."""
    return TraceEnum_ELBO(num_particles=args["particles"], max_plate_nesting=1)


def vimco_objective(args: dict) -> ELBO:
    """VIMCO with ``particles`` samples (Mnih & Rezende 2016; Li et al. 2020's NVISA, M = 15)."""
    from ..infer.vimco import VIMCO

    return VIMCO(num_particles=args["particles"], max_plate_nesting=1)
