"""Named recipes: model + guide + objective + schedules + defaults, as data.

A recipe's arguments are a plain dict (numbers, strings, lists) so that a checkpoint can store
them and rebuild the same model and guide. Later issues add entries to :data:`RECIPES`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from pyro.infer import (
    ELBO,
    RenyiELBO,
    Trace_ELBO,
    TraceEnum_ELBO,
    TraceGraph_ELBO,
    TraceMeanField_ELBO,
)
from torch import nn

from pyromix.guides import (
    GatedGuide,
    GaussianGuide,
    HierarchicalGuide,
    IAFGuide,
    MixtureGuide,
    MVAEGuide,
    SemiSupervisedGuide,
    UniformDequantization,
)
from pyromix.models import (
    VAE,
    ConditionalPriorVAE,
    DensityRatioEstimator,
    FlowDensity,
    FlowPrior,
    GaussianMixtureVAE,
    HierarchicalVAE,
    ImplicitPriorVAE,
    MixtureOfGaussiansPrior,
    SemiSupervisedVAE,
    VampPrior,
)

from .data import Dataset
from .flows import FLOW_KINDS, flow_stack, iaf_stack
from .infer.density_ratio import DensityRatioSteps
from .infer.schedules import StdAnnealing, TemperatureAnnealing
from .labels import Batch
from .likelihoods import LIKELIHOODS
from .nn import ConvDecoder, ConvEncoder, NormalHead, glorot_init_, mlp
from .pretrain import fit_cluster_head, init_mixture_prior, pretrain_autoencoder

__all__ = [
    "ClassificationTerm",
    "Recipe",
    "RECIPES",
    "COMMON_DEFAULTS",
    "MIXTURE_DEFAULTS",
    "MVAE_DEFAULTS",
    "BETA_SCHEDULES",
    "VAE_FLOW_DEFAULTS",
    "FLOW_DEFAULTS",
    "get_recipe",
    "build_body",
    "build_encoder",
    "build_likelihood",
]

#: The training and network arguments every recipe starts from (a recipe's own defaults win).
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
        initialize: ``(model, guide, dataset, args) -> None`` run once before training (not on
            resume), e.g. autoencoder pretraining.
        step_hooks: ``(model, guide, dataset, args) -> [StepHook]`` called by the trainer after
            every optimiser step, e.g. the implicit prior's discriminator steps; each also has
            ``parameters()``, those it trains, which the objective leaves without a gradient.
        loss_terms: ``(model, guide, dataset, args) -> [LossTerm]``, extra terms of the loss
            (:func:`pyromix.train.fit`'s ``loss_terms``), e.g. M2's classification term.
    """

    description: str
    build: Callable[[dict], tuple[nn.Module, nn.Module]]
    objective: Callable[[dict], ELBO]
    defaults: dict[str, Any] = field(default_factory=dict)
    kl_weighted: bool = True
    schedules: Callable[[nn.Module, nn.Module, dict], list] = lambda model, guide, args: []
    initialize: Callable[[nn.Module, nn.Module, Dataset, dict], None] | None = None
    step_hooks: Callable[[nn.Module, nn.Module, Dataset, dict], list] = (
        lambda model, guide, data, args: []
    )
    loss_terms: Callable[[nn.Module, nn.Module, Dataset, dict], list] = (
        lambda model, guide, data, args: []
    )


def build_body(args: dict) -> nn.Module:
    """x -> features from the recipe's ``arch``, ``hidden`` and ``gated`` arguments."""
    if args["arch"] == "conv":
        return glorot_init_(ConvEncoder(args["image_shape"], args["hidden"][-1]))
    return glorot_init_(mlp(args["data_dim"], args["hidden"], gated=args["gated"]))


def build_encoder(args: dict, out_dim: int) -> NormalHead:
    """x -> q(z | x)."""
    return glorot_init_(NormalHead(build_body(args), out_dim))


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


# Flows in the VAE (--guide iaf, --prior flow): K = ``flows`` transforms whose conditioner
# networks are as wide as the encoder.
VAE_FLOW_DEFAULTS: dict[str, Any] = {"guide": "gaussian", "prior": "normal", "flows": 2}


def _check_choice(args: dict, key: str, choices: tuple) -> None:
    if args[key] not in choices:
        raise ValueError(f"{key}: expected one of {choices}, got {args[key]!r}")


def _check_flows(args: dict) -> None:
    flows = args["flows"]
    if not (isinstance(flows, int) and not isinstance(flows, bool) and flows >= 1):
        raise ValueError(f"flows: expected an integer >= 1, got {flows!r}")


def _build_vae(args: dict) -> tuple[nn.Module, nn.Module]:
    """The VAE, with an IAF posterior (Kingma et al. 2016) and/or a flow prior if asked."""
    args = {**VAE_FLOW_DEFAULTS, **args}  # runs saved before the flow options rebuild as they were
    _check_choice(args, "guide", ("gaussian", "iaf"))
    _check_choice(args, "prior", ("normal", "flow"))
    _check_flows(args)
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


def _elbo(args: dict) -> ELBO:
    return TraceMeanField_ELBO() if args["analytic_kl"] else Trace_ELBO(args["particles"])


def _iwae_bound(args: dict) -> ELBO:
    # RenyiELBO with alpha = 0 is the k-sample importance-weighted bound, per data point: it
    # sums log weights over dependent dims only and keeps the data plate (Burda et al. 2016).
    return RenyiELBO(
        alpha=0.0, num_particles=args["particles"], vectorize_particles=True, max_plate_nesting=1
    )


def _build_learned_prior(args: dict, *, vamp: bool) -> tuple[nn.Module, nn.Module]:
    """A VAE whose prior is a learned mixture: MG (seed 001) or the VampPrior (seed 004, eq. 9)."""
    d, k = args["latent_dim"], args["components"]
    guide = GaussianGuide(build_encoder(args, d))
    if vamp:  # pseudo-inputs stay in [0, 1] for data in that range (seed 004, 5.2)
        unit = args["likelihood"] == "bernoulli" or args["image_shape"] is not None
        prior = VampPrior(guide.encoder, k, args["data_dim"], bounds=(0.0, 1.0) if unit else None)
    else:
        prior = MixtureOfGaussiansPrior(d, k)
    return VAE(build_likelihood(args, d), d, prior=prior), guide


def _build_hvp(args: dict) -> tuple[nn.Module, nn.Module]:
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


def _place_pseudo_inputs(model: nn.Module, guide: nn.Module, data: Dataset, args: dict) -> None:
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


#: Arguments shared by the Gaussian-mixture recipes, K clusters (default the number of classes,
#: else 10), and NVISA's training choices for the whole family, which seed 002 (II-D, III-B) reports
#: help EnumY as well as VIMCO: a Gaussian decoder, std annealing, AE pretraining + GMM
#: initialisation. Annealing changes the objective every few epochs, so no early stopping.
MIXTURE_DEFAULTS: dict[str, Any] = {
    "clusters": None,
    "learn_weights": False,
    "prior_std_min": 0.0,
    "pretrain_epochs": 100,
    "std_annealing": True,
    "anneal_every": None,
    "likelihood": "gaussian",
    "patience": None,
    "std_min": 1e-4,  # the final std floor of std annealing (seed 002, II-D)
}


def _build_mixture(
    args: dict,
    *,
    y_mode: str = "enumerate",
    mean_field: bool = False,
    baseline: bool = False,
    marginalize_y: bool = False,
    q_y_form: str | None = None,
) -> tuple[nn.Module, nn.Module]:
    k, d = args["clusters"], args["latent_dim"]
    model = GaussianMixtureVAE(
        build_likelihood(args, d),
        d,
        k,
        learn_weights=args["learn_weights"],
        prior_std_min=args["prior_std_min"],
        marginalize_y=marginalize_y,
    )
    if marginalize_y:
        return model, GaussianGuide(build_encoder(args, d))
    if q_y_form is not None:  # MVAE (seed 000): q(y) in closed form, computed from the model
        _check_mvae_args(args)
        guide = MVAEGuide(
            model, build_body(args), form=q_y_form, hard=args["hard"], std_min=args["std_min"]
        )
        return model, guide
    nvil_baseline = None
    if baseline:  # C_psi(x) + c of NVIL (seed 002, eq. 6): an MLP with a scalar output
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


def _std_annealing(model: nn.Module, guide: nn.Module, args: dict) -> list:
    if not args["std_annealing"]:
        return []
    targets = [
        t
        for t in (model.likelihood, guide, getattr(guide, "encoder", None))
        if hasattr(t, "std_min")
    ]
    return [StdAnnealing(targets, args["epochs"], args["anneal_every"], final=args["std_min"])]


def _pretrain_mixture(model: nn.Module, guide: nn.Module, data: Dataset, args: dict) -> None:
    """AE pretraining of encoder and decoder, then a GMM on the codes sets the prior (and the
    guide's q(y | x) is fitted to the GMM's responsibilities, keeping the body fixed)."""
    if not args["pretrain_epochs"]:
        return
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


def _vimco(args: dict) -> ELBO:
    from .infer.vimco import VIMCO

    return VIMCO(num_particles=args["particles"], max_plate_nesting=1)


def _mixture_recipe(description: str, objective, defaults=None, **build_options) -> Recipe:
    return Recipe(
        description,
        build=lambda args: _build_mixture(args, **build_options),
        objective=objective,
        defaults={**MIXTURE_DEFAULTS, **(defaults or {})},
        schedules=_std_annealing,
        initialize=_pretrain_mixture,
    )


def _enum_elbo(args: dict) -> ELBO:
    return TraceEnum_ELBO(num_particles=args["particles"], max_plate_nesting=1)


def _build_cpvae(args: dict) -> tuple[nn.Module, nn.Module]:
    k, d = args["clusters"], args["latent_dim"]
    model = ConditionalPriorVAE(build_likelihood(args, d + k), d, k)
    guide = GatedGuide(build_body(args), d, k, estimator=args["estimator"], std_min=args["std_min"])
    glorot_init_(guide)
    return model, guide


def _cpvae_objective(args: dict) -> ELBO:
    # gumbel: the closed-form KLs of eq. 8-9 (pyromix.distributions) with a relaxed c in the
    # reconstruction; enum: the bound of eq. 7 summed over c exactly.
    if args["estimator"] == "enum":
        return _enum_elbo(args)
    return TraceMeanField_ELBO(num_particles=args["particles"])


def _temperature_annealing(model: nn.Module, guide: nn.Module, args: dict) -> list:
    if args["estimator"] != "gumbel":
        return []
    return [TemperatureAnnealing(guide, args["epochs"])]


# MVAE (seed 000): soft or hard optimisation, and scheduled beta (5.8): the latent sites' weight
# rises linearly from 0 to beta over the whole run ("linear") instead of staying at beta.
MVAE_DEFAULTS: dict[str, Any] = {"hard": False, "beta_schedule": "constant"}
BETA_SCHEDULES = ("constant", "linear")


def _check_mvae_args(args: dict) -> None:
    if args["hard"] is not True and args["hard"] is not False:
        raise ValueError(f"hard: expected True or False, got {args['hard']!r}")
    if args["beta_schedule"] not in BETA_SCHEDULES:
        raise ValueError(
            f"beta_schedule: expected one of {BETA_SCHEDULES}, got {args['beta_schedule']!r}"
        )


def _mvae_elbo(args: dict) -> ELBO:
    # Vectorised particles are eq. 1's L samples per x: the guide shares one q(y) across them.
    # Soft optimisation enumerates y; hard optimisation samples its one-hot q(y).
    elbo = Trace_ELBO if args["hard"] else TraceEnum_ELBO
    return elbo(num_particles=args["particles"], vectorize_particles=True, max_plate_nesting=1)


def _build_implicit_prior(args: dict) -> tuple[nn.Module, nn.Module]:
    """The VAE with the implicit optimal prior; T is as wide as the encoder (seed 004, 5.2)."""
    d = args["latent_dim"]
    ratio = DensityRatioEstimator(d, args["disc_hidden"] or args["hidden"], args["disc_dropout"])
    model = ImplicitPriorVAE(build_likelihood(args, d), d, ratio)
    return model, GaussianGuide(build_encoder(args, d))


def _density_ratio_steps(model: nn.Module, guide: nn.Module, data: Dataset, args: dict) -> list:
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


# The flow density model: K = ``flows`` layers of ``flow_kind``, each conditioner an MLP of
# ``hidden``; ``levels``: "auto" reads them off the data (17 for digits, 2 when binarised).
FLOW_DEFAULTS: dict[str, Any] = {
    "likelihood": "flow",
    "binarize": "none",
    "levels": "auto",
    "flows": 8,
    "flow_kind": "coupling",
}


def _build_flow(args: dict) -> tuple[nn.Module, nn.Module]:
    _check_flows(args)
    _check_choice(args, "flow_kind", FLOW_KINDS)
    d, levels = args["data_dim"], args["levels"]
    transforms = flow_stack(d, args["flows"], args["hidden"], args["flow_kind"])
    return FlowDensity(transforms, d, levels), UniformDequantization(d, levels)


def _standardize_flow(model: nn.Module, guide: nn.Module, data: Dataset, args: dict) -> None:
    if model.levels is None:
        model.standardize(data.train.x)


def _build_m2(args: dict) -> tuple[nn.Module, nn.Module]:
    """M2 (Kingma et al. 2014): classifier and encoder as wide as ``hidden``; the encoder and
    the decoder read the one-hot label beside x and z."""
    k, d, width = args["clusters"], args["latent_dim"], args["hidden"]
    model = SemiSupervisedVAE(build_likelihood(args, d + k), d, k)
    classifier = glorot_init_(nn.Sequential(build_body(args), nn.Linear(width[-1], k)))
    encoder = NormalHead(mlp(args["data_dim"] + k, width, gated=args["gated"]), d)
    return model, SemiSupervisedGuide(classifier, glorot_init_(encoder), k)


class ClassificationTerm:
    r"""M2's classification loss, ``alpha E_labelled[-log q(y | x)]`` (Kingma et al. 2014, eq. 9).

    In a batch it is ``alpha / N_l`` times the sum of ``-log q(y | x)`` over its revealed
    points, so an epoch adds ``alpha`` times the mean over the ``N_l`` revealed labels;
    ``alpha = alpha_per_point * N`` (the paper's 0.1 N) with N the training-set size.

    Arguments:
        alpha: the weight alpha.
        num_labeled: N_l, the revealed labels of the training split (>= 1).
    """

    def __init__(self, alpha: float, num_labeled: int) -> None:
        if not alpha >= 0 or num_labeled < 1:
            raise ValueError(
                f"expected alpha >= 0 and num_labeled >= 1, got {alpha} and {num_labeled}"
            )
        self.weight = alpha / num_labeled

    def __call__(self, model: nn.Module, guide: nn.Module, batch: Batch) -> torch.Tensor:
        if batch.y is None:
            return batch.x.new_zeros(())
        log_q = guide.log_class_probs(batch.x[batch.y_mask])
        return -self.weight * log_q.gather(-1, batch.y[batch.y_mask, None]).sum()


def _classification_term(model: nn.Module, guide: nn.Module, data: Dataset, args: dict) -> list:
    labeled = data.train.labeled
    if labeled is None or not args["alpha"]:
        return []
    return [ClassificationTerm(args["alpha"] * len(data.train), int(labeled.sum()))]


#: The shipped recipes by name, which ``pyromix fit NAME`` and :func:`get_recipe` look up.
RECIPES: dict[str, Recipe] = {
    "vae": Recipe(
        "VAE: z ~ N(0, I) (--prior flow: a flow), Gaussian (--guide iaf: IAF) encoder, ELBO",
        build=_build_vae,
        objective=_elbo,
        defaults=VAE_FLOW_DEFAULTS,
    ),
    "iwae": Recipe(
        "IWAE: the VAE's networks trained on the k-sample importance-weighted bound",
        build=_build_vae,
        objective=_iwae_bound,
        defaults={**VAE_FLOW_DEFAULTS, "particles": 5},
        kl_weighted=False,
    ),
    "flow": Recipe(
        "normalising flow (Real NVP couplings) on dequantised levels: exact log p(x), bits/dim",
        build=_build_flow,
        objective=lambda args: Trace_ELBO(args["particles"]),
        defaults=FLOW_DEFAULTS,
        kl_weighted=False,
        initialize=_standardize_flow,
    ),
    "hvp": Recipe(
        "HVAE + VP: z2 ~ VampPrior, z1 | z2, x | z1, z2; q(z2|x) q(z1|x,z2) (Tomczak 2018)",
        build=_build_hvp,
        objective=_elbo,
        defaults={"components": 50, "pseudo_init": "random"},
        initialize=_place_pseudo_inputs,
    ),
    "mog": Recipe(
        "VAE with a learned mixture-of-Gaussians prior (K = --components), MG of seed 001",
        build=lambda args: _build_learned_prior(args, vamp=False),
        objective=_elbo,
        defaults={"components": 10},
    ),
    "vampprior": Recipe(
        "VAE with the VampPrior: encoder mixture at K learned pseudo-inputs (seed 004, eq. 9)",
        build=lambda args: _build_learned_prior(args, vamp=True),
        objective=_elbo,
        defaults={"components": 50, "pseudo_init": "random"},
        initialize=_place_pseudo_inputs,
    ),
    "gmvae": _mixture_recipe(
        "Gaussian-mixture VAE, q(y|x) q(z|x,y) with y enumerated (EnumY, TraceEnum_ELBO)",
        _enum_elbo,
    ),
    "nvisa": _mixture_recipe(
        "NVISA: mixture VAE, y sampled, VIMCO with M=15, Gaussian decoder, std annealing",
        _vimco,
        defaults={"particles": 15, "prior_std_min": 1.0},
        y_mode="sample",
    ),
    "nvil": _mixture_recipe(
        "mixture VAE, y sampled, NVIL: TraceGraph_ELBO with a learned baseline network",
        lambda args: TraceGraph_ELBO(num_particles=args["particles"]),
        y_mode="sample",
        baseline=True,
    ),
    "gmvae-meanfield": _mixture_recipe(
        "mixture VAE with the mean-field guide q(y|x) q(z|x), y enumerated",
        _enum_elbo,
        mean_field=True,
    ),
    "vade": _mixture_recipe(
        "VaDE: y summed out in the model, z-only guide, cluster readout p(y|z)",
        lambda args: Trace_ELBO(num_particles=args["particles"]),
        marginalize_y=True,
    ),
    "cpvae": Recipe(
        "CP-VAE: c ~ Cat(1/K), z | c ~ learned N(mu_c, sigma_c), decoder sees [z, c] (seed 001)",
        build=_build_cpvae,
        objective=_cpvae_objective,
        defaults={
            "clusters": None,
            "estimator": "gumbel",
            "latent_dim": 40,
            "hidden": [300, 300],
            "gated": True,
            "lr": 5e-4,
            "warmup": None,
        },
        schedules=_temperature_annealing,
    ),
    "mvae": _mixture_recipe(
        "MVAE: q(y) in closed form from p(x|z) p(y) p(z|y) / q(z|x,y) (seed 000, eq. 5)",
        _mvae_elbo,
        MVAE_DEFAULTS,
        q_y_form="mvae",
    ),
    "mvae-em1": _mixture_recipe(
        "MVAE (EM-V1): q(y) in closed form from the prior p(y) p(z|y) (seed 000, eq. 10)",
        _mvae_elbo,
        MVAE_DEFAULTS,
        q_y_form="em1",
    ),
    "mvae-em2": _mixture_recipe(
        "MVAE (EM-V2): q(y) from prior over posterior (seed 000, eq. 15); beta-MVAE with --beta",
        _mvae_elbo,
        MVAE_DEFAULTS,
        q_y_form="em2",
    ),
    "iop": Recipe(
        "VAE with the implicit optimal prior N(0, I) exp(T(z)), T by density ratio (seed 004)",
        build=_build_implicit_prior,
        objective=_elbo,
        defaults={
            "vae_steps": 1,
            "disc_steps": 10,
            "disc_batch_size": None,
            "disc_hidden": None,
            "disc_dropout": 0.5,
        },
        step_hooks=_density_ratio_steps,
    ),
    "m2": Recipe(
        "M2, semi-supervised: y ~ Cat, z ~ N(0, I), x | y, z; q(y|x) q(z|x,y), y observed "
        "where --labeled reveals it, enumerated elsewhere; + alpha classification term",
        build=_build_m2,
        objective=_enum_elbo,
        defaults={"clusters": None, "labeled": 0.1, "alpha": 0.1},
        loss_terms=_classification_term,
    ),
}


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``, or a ValueError listing the valid names."""
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(
            f"model: unknown recipe {name!r}; choose from {', '.join(RECIPES)}"
        ) from None
