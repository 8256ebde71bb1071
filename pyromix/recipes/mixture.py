"""Gaussian-mixture VAEs: EnumY, NVISA, NVIL, the mean-field ablation and VaDE (seeds 000, 002).

They share the generative story ``y ~ Cat(pi)``, ``z | y ~ N(mu_y, sigma_y)``, ``x | z``, and
NVISA's training choices (Li et al. 2020, II-D and III-B): a Gaussian decoder, std annealing, and
autoencoder pretraining followed by a GMM on the codes. The guide decides the recipe.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from pyro.infer import ELBO, Trace_ELBO, TraceGraph_ELBO
from torch import nn

from pyromix.guides import GaussianGuide, MixtureGuide
from pyromix.models import GaussianMixtureVAE

from ..data import Dataset
from ..infer.schedules import StdAnnealing
from ..pretrain import (
    check_pretrainable,
    fit_cluster_head,
    init_mixture_prior,
    pretrain_autoencoder,
)
from .blocks import build_body, build_encoder, build_likelihood, enum_objective, vimco_objective
from ..schema import Argument
from .arguments import CLUSTERS, common_argument
from .registry import Recipe, register_recipe


def prior_std_min(floor: float, reference: str = "") -> Argument:
    """The floor of the mixture components' stds, defaulting to ``floor``."""
    return Argument(
        "prior_std_min",
        float,
        floor,
        "floor of the mixture components' stds",
        low=0,
        reference=reference,
    )

__all__ = [
    "MIXTURE_ARGUMENTS",
    "MIXTURE_DEFAULTS",
    "prior_std_min",
    "build_mixture_model",
    "build_mixture",
    "std_annealing",
    "pretrain_mixture",
    "mixture_recipe",
]

LI = "Li et al. (2020)"
#: Arguments shared by the Gaussian-mixture recipes, K clusters (default the number of classes,
#: else 10), and NVISA's training choices for the whole family, which Li et al. (2020) (II-D, III-B)
#: reports help EnumY as well as VIMCO: a Gaussian decoder, std annealing, AE pretraining + GMM
#: initialisation. Annealing changes the objective every few epochs, so no early stopping.
MIXTURE_ARGUMENTS = (
    CLUSTERS,
    Argument("learn_weights", bool, False, "learn the mixture weights pi"),
    prior_std_min(0.0),
    Argument(
        "pretrain_epochs",
        int,
        100,
        "autoencoder pretraining epochs before a GMM on the codes sets the prior (0: none)",
        low=0,
        reference=f"{LI}, III-B",
    ),
    Argument("std_annealing", bool, True, "anneal the Gaussian std floors", reference=f"{LI}, II-D"),
    Argument(
        "anneal_every",
        int,
        None,
        "epochs between std-floor halvings (None: a tenth of the epochs)",
        low=1,
        none=True,
        reference=f"{LI}, II-D",
    ),
    common_argument("likelihood", default="gaussian", reference=f"{LI}, II-D"),
    common_argument(
        "patience", default=None, help="None: no early stopping (annealing changes the objective)"
    ),
    common_argument(
        "std_min", default=1e-4, help="the final std floor of std annealing", reference=f"{LI}, II-D"
    ),
)
MIXTURE_DEFAULTS: dict[str, Any] = {a.name: a.default for a in MIXTURE_ARGUMENTS}


def build_mixture_model(args: dict, *, marginalize_y: bool = False) -> GaussianMixtureVAE:
    """The mixture model of ``args``: ``clusters`` components in ``latent_dim`` dimensions, with
    learned weights if ``learn_weights``, component stds above ``prior_std_min``; y summed out in
    the model with ``marginalize_y`` (VaDE)."""
    return GaussianMixtureVAE(
        build_likelihood(args, args["latent_dim"]),
        args["latent_dim"],
        args["clusters"],
        learn_weights=args["learn_weights"],
        prior_std_min=args["prior_std_min"],
        marginalize_y=marginalize_y,
    )


def build_mixture(
    args: dict,
    *,
    y_mode: str = "enumerate",
    mean_field: bool = False,
    baseline: bool = False,
    marginalize_y: bool = False,
) -> tuple[nn.Module, nn.Module]:
    """Model and guide of the mixture recipes.

    Arguments:
        args: the recipe's arguments (:data:`MIXTURE_DEFAULTS` and the common ones).
        y_mode: ``"enumerate"`` (EnumY) or ``"sample"`` (NVISA, NVIL) for the guide's y.
        mean_field: the guide's z ignores y: q(y | x) q(z | x).
        baseline: give the guide NVIL's learned baseline C_psi(x) + c (Li et al. 2020, eq. 6).
        marginalize_y: y summed out in the model and a z-only guide (VaDE).
    """
    k, d = args["clusters"], args["latent_dim"]
    model = build_mixture_model(args, marginalize_y=marginalize_y)
    if marginalize_y:
        return model, GaussianGuide(build_encoder(args, d))
    nvil_baseline = None
    if baseline:  # an MLP with a scalar output
        nvil_baseline = nn.Sequential(
            build_body(args), nn.Linear(args["hidden"][-1], 1), nn.Flatten(0)
        )
    guide = MixtureGuide(
        build_body(args),
        d,
        k,
        y_mode=y_mode,
        mean_field=mean_field,
        std_min=args["std_min"],
        baseline=nvil_baseline,
    )
    return model, guide


def std_annealing(model: nn.Module, guide: nn.Module, args: dict) -> list:
    """The std-floor annealing of Li et al. (2020) (II-D), when ``args["std_annealing"]``: every floor
    ``std_min`` of the likelihood, the guide and its encoder halves every ``anneal_every``
    epochs down to ``args["std_min"]``. A recipe's ``schedules``."""
    if not args["std_annealing"]:
        return []
    targets = [
        t
        for t in (model.likelihood, guide, getattr(guide, "encoder", None))
        if hasattr(t, "std_min")
    ]
    return [StdAnnealing(targets, args["epochs"], args["anneal_every"], final=args["std_min"])]


def pretrain_mixture(model: nn.Module, guide: nn.Module, data: Dataset, args: dict) -> None:
    """Autoencoder pretraining, then a GMM on the codes sets the prior (Li et al. 2020, III-B; VaDE).

    Encoder and decoder train for ``pretrain_epochs`` as a deterministic autoencoder (the guide's
    ``autoencoder(x)``, else its encoder's mean); a diagonal GMM fitted to the training codes
    sets the model's ``loc``, ``raw_scale`` (and ``logits``); a guide with ``y_logits`` is then
    fitted to the GMM's responsibilities with the body fixed. A recipe's ``initialize``.
    """
    if not args["pretrain_epochs"]:
        return
    check_pretrainable(model, guide)
    if hasattr(guide, "autoencoder"):
        encode = guide.autoencoder
    else:
        encode = lambda x: guide.encoder(x).mean  # noqa: E731 - the z-only (VaDE) guide
    pretrain_autoencoder(
        encode,
        model.likelihood,
        [guide, model.likelihood],
        data,
        epochs=args["pretrain_epochs"],
        batch_size=args["batch_size"],
        lr=args["lr"],
        seed=args["seed"],
    )
    codes = encode(data.train.x).detach()
    gmm = init_mixture_prior(model, codes, seed=args["seed"])
    if hasattr(guide, "y_logits"):  # start q(y | x) at the GMM's responsibilities
        targets = torch.as_tensor(
            gmm.predict_proba(codes.cpu().double().numpy()), dtype=codes.dtype
        )
        fit_cluster_head(
            lambda x: guide.y_logits(guide.body(x)),
            [guide.y_logits],
            data.train.x,
            targets.to(codes.device),
            epochs=args["pretrain_epochs"],
            batch_size=args["batch_size"],
            lr=args["lr"],
            seed=args["seed"],
        )


def mixture_recipe(
    description: str,
    objective: Callable[[dict], ELBO],
    defaults: dict[str, Any] | None = None,
    *,
    arguments: tuple[Argument, ...] = (),
    build: Callable[[dict], tuple[nn.Module, nn.Module]] | None = None,
    kl_weight: Callable[[dict], Callable] | None = None,
    **build_options: Any,
) -> Recipe:
    """A recipe of the mixture family: :data:`MIXTURE_ARGUMENTS` (then ``arguments``, then plain
    ``defaults``), :func:`std_annealing`, :func:`pretrain_mixture`, ``clusters`` resolved from the
    data, and ``build`` (by default :func:`build_mixture` with ``build_options``)."""
    return Recipe(
        description,
        build=build or (lambda args: build_mixture(args, **build_options)),
        objective=objective,
        arguments=(*MIXTURE_ARGUMENTS, *arguments),
        defaults=defaults or {},
        schedules=std_annealing,
        initialize=pretrain_mixture,
        **({} if kl_weight is None else {"kl_weight": kl_weight}),
    )


register_recipe(
    "gmvae",
    mixture_recipe(
        "Gaussian-mixture VAE, q(y|x) q(z|x,y) with y enumerated (EnumY, TraceEnum_ELBO)",
        enum_objective,
    ),
)
register_recipe(
    "nvisa",
    mixture_recipe(
        "NVISA: mixture VAE, y sampled, VIMCO with M=15, Gaussian decoder, std annealing",
        vimco_objective,
        arguments=(
            common_argument("particles", default=15, reference=f"{LI}, M = 15"),
            prior_std_min(1.0, f"{LI}, eq. 2b"),
        ),
        y_mode="sample",
    ),
)
# NVIL's prior stds are floored at 1, as NVISA's (Li et al. 2020, eq. 2b: softplus + 1). Std annealing
# starts the guide's std floor at 1 while the GMM initialisation leaves components as narrow as
# 0.2, so the cost of a sampled y spreads over hundreds of nats (digits validation split, seed 0:
# median 157, 90th percentile 261, max 649; with the floor 89, 105, 140); the score-function
# gradient of q(y | x) then put every point in one cluster within 10 epochs (ACC 0.117; with the
# floor, 0.794; docs/benchmarks.md has the seeds).
register_recipe(
    "nvil",
    mixture_recipe(
        "mixture VAE, y sampled, NVIL: TraceGraph_ELBO with a learned baseline network",
        lambda args: TraceGraph_ELBO(num_particles=args["particles"]),
        arguments=(prior_std_min(1.0, f"{LI}, eq. 2b"),),
        y_mode="sample",
        baseline=True,
    ),
)
register_recipe(
    "gmvae-meanfield",
    mixture_recipe(
        "mixture VAE with the mean-field guide q(y|x) q(z|x), y enumerated",
        enum_objective,
        mean_field=True,
    ),
)
register_recipe(
    "vade",
    mixture_recipe(
        "VaDE: y summed out in the model, z-only guide, cluster readout p(y|z)",
        lambda args: Trace_ELBO(num_particles=args["particles"]),
        marginalize_y=True,
    ),
)
