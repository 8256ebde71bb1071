"""MVAE (Chowdhury et al.): the mixture model with q(y) in closed form; EM-V1 and EM-V2 variants."""

from __future__ import annotations

from typing import Any

from pyro.infer import ELBO, Trace_ELBO, TraceEnum_ELBO
from torch import nn

from pyromix.guides import MVAEGuide

from .blocks import build_body
from .mixture import build_mixture_model, mixture_recipe
from ..infer.schedules import KLWarmup
from ..schema import Argument, validate
from .registry import register_recipe

__all__ = [
    "MVAE_ARGUMENTS",
    "MVAE_DEFAULTS",
    "BETA_SCHEDULES",
    "build_mvae",
    "mvae_objective",
    "mvae_kl_weight",
]

BETA_SCHEDULES = ("constant", "linear")
#: Soft or hard optimisation, and scheduled beta (5.8): the latent sites' weight rises linearly
#: from 0 to beta over the whole run ("linear") instead of staying at beta.
MVAE_ARGUMENTS = (
    Argument(
        "hard",
        bool,
        False,
        "hard optimisation: all mass on argmax q(y)",
        reference="Chowdhury et al.",
    ),
    Argument(
        "beta_schedule",
        str,
        "constant",
        "beta fixed, or rising linearly from 0 over the run",
        choices=BETA_SCHEDULES,
        reference="Chowdhury et al., 5.8",
    ),
)
MVAE_DEFAULTS: dict[str, Any] = {a.name: a.default for a in MVAE_ARGUMENTS}


def _check_mvae_args(args: dict) -> None:
    validate({a.name: a for a in MVAE_ARGUMENTS}, args)


def mvae_kl_weight(args: dict) -> KLWarmup:
    """The KL weight: warm-up to ``beta`` over ``warmup`` epochs, or over the whole run for the
    scheduled beta (``beta_schedule="linear"``, Chowdhury et al., 5.8). A recipe's
    ``kl_weight``."""
    ramp = args["epochs"] if args["beta_schedule"] == "linear" else args["warmup"]
    return KLWarmup(ramp, args["beta"])


def build_mvae(args: dict, *, form: str) -> tuple[nn.Module, nn.Module]:
    """The mixture model with the guide whose q(y) is computed from it in closed form:
    ``form`` ``"mvae"`` (eq. 5), ``"em1"`` (eq. 10) or ``"em2"`` (eq. 15)."""
    _check_mvae_args(args)
    model = build_mixture_model(args)
    body = build_body(args)
    guide = MVAEGuide(model, body, form=form, hard=args["hard"], std_min=args["std_min"])
    return model, guide


def mvae_objective(args: dict) -> ELBO:
    """Vectorised particles are eq. 1's L samples per x: the guide shares one q(y) across them.
    Soft optimisation enumerates y; hard optimisation samples its one-hot q(y)."""
    elbo = Trace_ELBO if args["hard"] else TraceEnum_ELBO
    return elbo(num_particles=args["particles"], vectorize_particles=True, max_plate_nesting=1)


DESCRIPTIONS = {
    "mvae": "MVAE: q(y) in closed form from p(x|z) p(y) p(z|y) / q(z|x,y) (Chowdhury et al., eq. 5)",
    "em1": "MVAE (EM-V1): q(y) in closed form from the prior p(y) p(z|y) (Chowdhury et al., eq. 10)",
    "em2": "MVAE (EM-V2): q(y) from prior over posterior (Chowdhury et al., eq. 15); beta-MVAE with --beta",
}
for _form, _description in DESCRIPTIONS.items():
    register_recipe(
        "mvae" if _form == "mvae" else f"mvae-{_form}",
        mixture_recipe(
            _description,
            mvae_objective,
            arguments=MVAE_ARGUMENTS,
            build=lambda args, form=_form: build_mvae(args, form=form),
            kl_weight=mvae_kl_weight,
        ),
    )
