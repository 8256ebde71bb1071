"""Which observation model a run uses: ``likelihood="auto"`` resolved from the data, and the
options of the chosen one checked against the data before any work."""

from __future__ import annotations

from typing import Any

from ..flows import infer_levels
from ..schema import validate
from . import LEVEL_LIKELIHOODS, LIKELIHOOD_ARGUMENTS, LIKELIHOOD_DEFAULTS, automatic_likelihood

__all__ = ["resolve_likelihood"]


def _levels(dataset: Any) -> int | None:
    """L when every split sits on the training split's L levels k / (L - 1), else None."""
    levels = infer_levels(dataset.train.x)
    if levels is None:
        return None
    return levels if all(_on_grid(s.x, levels) for s in dataset._splits()) else None


def _on_grid(x: Any, levels: int) -> bool:
    if x.numel() == 0:
        return True
    scaled = x * (levels - 1)
    in_unit = bool(x.min() >= 0 and x.max() <= 1)
    return in_unit and bool((scaled - scaled.round()).abs().max() < 1e-4)


def resolve_likelihood(args: dict[str, Any], dataset: Any) -> None:
    """Resolve ``args["likelihood"]`` when it is ``"auto"`` (recording why in
    ``args["likelihood_auto"]``), and record ``args["levels"]`` for a likelihood on L levels.

    Raises:
        ValueError: naming the argument, for options of the wrong type and for a likelihood on
            L levels given data on no such grid.
    """
    validate({a.name: a for a in LIKELIHOOD_ARGUMENTS}, {**LIKELIHOOD_DEFAULTS, **args})
    name, levels = args["likelihood"], None
    if name == "auto":
        x = dataset.train.x
        in_unit = bool(x.min() >= 0 and x.max() <= 1)
        image = dataset.image_shape is not None and in_unit
        binary = dataset.is_binary
        levels = None if binary or (image and args["binarize"] != "none") else _levels(dataset)
        name, why = automatic_likelihood(binary, image, levels, args["binarize"])
        args["likelihood"], args["likelihood_auto"] = name, why
    if name in LEVEL_LIKELIHOODS:
        binarised = args["binarize"] in ("static", "dynamic")  # it will see 0s and 1s
        levels = 2 if binarised else levels or _levels(dataset)
        if levels is None:
            raise ValueError(
                f"likelihood: {name!r} needs data on L evenly spaced levels k / (L - 1) in [0, 1] "
                "(such as pixels / 255), and this data sits on no such grid; use 'gaussian' or "
                "'heteroscedastic' for continuous data"
            )
        args["levels"] = levels
