"""The normalising flow density model on dequantised levels: exact log p(x) and bits/dim."""

from __future__ import annotations

from typing import Any

from pyro.infer import Trace_ELBO
from torch import nn

from pyromix.guides import EmptyGuide, UniformDequantization
from pyromix.models import FlowDensity

from ..data import Dataset
from ..flows import FLOW_KINDS, flow_stack
from ..schema import Argument, Options, validate
from .arguments import LEVELS, common_argument
from .registry import Recipe, register_recipe

__all__ = ["FLOW_ARGUMENTS", "FLOW_DEFAULTS", "build_flow", "standardize_flow"]

#: The flow density model: K = ``flows`` layers of ``flow_kind``, each conditioner an MLP of
#: ``hidden``; its own likelihood, the flow's exact density.
FLOW_ARGUMENTS = (
    common_argument(
        "likelihood",
        default="flow",
        accepts=(Options("flow"),),
        help="the flow's own exact density of the (dequantised) data",
    ),
    common_argument("binarize", default="none"),
    LEVELS,
    Argument("flows", int, 8, "K flow layers", low=1),
    Argument(
        "flow_kind",
        str,
        "coupling",
        "the flow's layers: affine couplings or rational-quadratic splines",
        choices=FLOW_KINDS,
        reference="Dinh et al. (2017)",
    ),
)
FLOW_DEFAULTS: dict[str, Any] = {a.name: a.default for a in FLOW_ARGUMENTS}


def build_flow(args: dict) -> tuple[nn.Module, nn.Module]:
    """The flow density and its dequantisation "guide" for ``args``."""
    validate({a.name: a for a in FLOW_ARGUMENTS}, args)  # also when called directly
    d, levels = args["data_dim"], args["levels"]
    transforms = flow_stack(d, args["flows"], args["hidden"], args["flow_kind"])
    guide = EmptyGuide() if levels is None else UniformDequantization(d)
    return FlowDensity(transforms, d, levels), guide


def standardize_flow(model: nn.Module, guide: nn.Module, data: Dataset, args: dict) -> None:
    """Standardise continuous data (no levels) by the training split. A recipe's
    ``initialize``."""
    if model.levels is None:
        model.standardize(data.train.x)


register_recipe(
    "flow",
    Recipe(
        "normalising flow (Real NVP couplings) on dequantised levels: exact log p(x), bits/dim",
        build=build_flow,
        objective=lambda args: Trace_ELBO(args["particles"]),
        arguments=FLOW_ARGUMENTS,
        kl_weighted=False,
        initialize=standardize_flow,
    ),
)
