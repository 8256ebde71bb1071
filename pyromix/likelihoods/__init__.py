"""Observation models p(x | z): a decoder network plus a distribution over the data.

Each likelihood maps latents of any batch shape ``(..., in_dim)`` to a distribution with event
shape ``(D,)`` and exposes ``mean(z)`` for sample grids. By name (``--likelihood``):

- ``bernoulli``: Bernoulli per dimension; a log-probability of binary data.
- ``gaussian``: Normal with one learned std per dimension (homoscedastic); a log-density.
- ``heteroscedastic``: Normal whose mean and log-variance the decoder outputs; a log-density.
- ``logistic``: a discretised logistic on the data's L levels; a log-probability of L-level data.
- ``logistic_mixture``: a mixture of ``logistic_components`` of them (PixelCNN++); the same.

Densities and probabilities are different events, so their numbers never rank together
(:func:`pyromix.footing.footing`).
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from ..schema import Argument, Interval, ListOf
from .bernoulli import BernoulliLikelihood
from .gaussian import SPREAD_FLOOR, GaussianLikelihood, HeteroscedasticGaussianLikelihood
from .logistic import LOG_SCALE_MIN, DiscretizedLogisticLikelihood, DiscretizedLogisticMixture

__all__ = [
    "BernoulliLikelihood",
    "GaussianLikelihood",
    "HeteroscedasticGaussianLikelihood",
    "DiscretizedLogisticLikelihood",
    "DiscretizedLogisticMixture",
    "LIKELIHOODS",
    "LEVEL_LIKELIHOODS",
    "LIKELIHOOD_ARGUMENTS",
    "LIKELIHOOD_DEFAULTS",
    "LOG_SCALE_MIN",
    "SPREAD_FLOOR",
    "make_likelihood",
    "automatic_likelihood",
    "init_from_data_",
]

LIKELIHOODS: dict[str, type[nn.Module]] = {
    "bernoulli": BernoulliLikelihood,
    "gaussian": GaussianLikelihood,
    "heteroscedastic": HeteroscedasticGaussianLikelihood,
    "logistic": DiscretizedLogisticLikelihood,
    "logistic_mixture": DiscretizedLogisticLikelihood,
}
#: Likelihoods that give a probability of data on L levels (the run records L as ``levels``).
LEVEL_LIKELIHOODS = ("logistic", "logistic_mixture")
#: The likelihoods' options among a recipe's arguments, typed (:mod:`pyromix.schema`).
LIKELIHOOD_ARGUMENTS = (
    Argument(
        "sigmoid_mean",
        bool,
        False,
        "Gaussian likelihoods: squash the mean into [0, 1]",
        reference="Takahashi et al. (2019), 5.2",
    ),
    Argument(
        "logvar_bounds",
        list[float],
        None,
        "heteroscedastic: clamp the decoder's log-variance to [lo, hi] (default: no bounds)",
        accepts=(None, ListOf(Interval(float), length=2, increasing=True)),
    ),
    Argument(
        "logistic_components",
        int,
        5,
        "logistic_mixture: K discretised logistics per dimension",
        low=1,
        reference="Salimans et al. (2017), PixelCNN++",
    ),
)
#: The likelihoods' options in a recipe's arguments, with their defaults.
LIKELIHOOD_DEFAULTS: dict[str, Any] = {a.name: a.default for a in LIKELIHOOD_ARGUMENTS}


def make_likelihood(args: dict, make_decoder: Callable[[int], nn.Module]) -> nn.Module:
    """The observation model ``args["likelihood"]`` on a decoder from ``make_decoder(P)``, a
    network with ``P * D`` outputs (P values per data dimension).

    Arguments:
        args: a recipe's arguments: ``likelihood``, ``data_dim``, ``std_min`` and, where they
            apply, ``sigmoid_mean``, ``logvar_bounds``, ``levels``, ``logistic_components``
            (missing ones take :data:`LIKELIHOOD_DEFAULTS`, so older runs rebuild).
        make_decoder: P -> decoder network.

    Example:
        >>> from pyromix.nn import mlp
        >>> args = {"likelihood": "logistic_mixture", "data_dim": 4, "levels": 17}
        >>> p = make_likelihood(args, lambda per_dim: mlp(2, [8], per_dim * 4))
        >>> p(torch.zeros(3, 2)).event_shape, p.decoder[-1].out_features
        (torch.Size([4]), 60)
    """
    args = {**LIKELIHOOD_DEFAULTS, **args}
    name = args["likelihood"]
    if name == "gaussian":
        return GaussianLikelihood(
            make_decoder(1), args["data_dim"], args["std_min"], args["sigmoid_mean"]
        )
    if name == "heteroscedastic":
        return HeteroscedasticGaussianLikelihood(
            make_decoder(2), args["sigmoid_mean"], args["logvar_bounds"], args["std_min"]
        )
    if name in LEVEL_LIKELIHOODS:
        k = args["logistic_components"] if name == "logistic_mixture" else 1
        per_dim = DiscretizedLogisticLikelihood.outputs_per_dim(k)
        return DiscretizedLogisticLikelihood(make_decoder(per_dim), args["levels"], k)
    return BernoulliLikelihood(make_decoder(1))


def automatic_likelihood(
    is_binary: bool, is_image_in_unit: bool, levels: int | None, binarize: str
) -> tuple[str, str]:
    """What ``likelihood="auto"`` picks for data, and why (one phrase, recorded with the run).

    Bernoulli for binary data, and for [0, 1] images unless ``binarize="none"`` (they are
    binarised, the protocol of the binary-image benchmarks); the discretised logistic for other
    data on L evenly spaced levels in [0, 1]; the per-dimension Gaussian otherwise.

    Example:
        >>> automatic_likelihood(False, True, 17, "none")[0]
        'logistic'
    """
    if is_binary:
        return "bernoulli", "the data are binary"
    if is_image_in_unit and binarize != "none":
        return "bernoulli", "[0, 1] images are binarised for a Bernoulli decoder"
    if levels is not None:
        return "logistic", (
            f"the data sit on {levels} levels k / {levels - 1}: a discretised logistic gives "
            "their probability"
        )
    return "gaussian", "the data are continuous: a Gaussian with a per-dimension std"


@torch.no_grad()
def init_from_data_(module: nn.Module, x: torch.Tensor) -> None:
    """Start every observation model in ``module`` that learns from the data's scale
    (``init_from_data_(x)``, as :class:`GaussianLikelihood`) at the training data ``x``."""
    for m in module.modules():
        if hasattr(m, "init_from_data_"):
            m.init_from_data_(x)
