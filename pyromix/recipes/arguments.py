"""Every recipe's typed arguments: the common ones, declared once, and a recipe's schema.

A recipe's schema is :data:`COMMON_ARGUMENTS` with the recipe's own
:class:`~pyromix.schema.Argument` declarations (``Recipe.arguments``) on top, then any plain
``Recipe.defaults`` entries (a plugin's dict: a new name becomes an argument typed by its
default, with no help). The CLI's flags, the check of a run's arguments, the docs' table
(:func:`arguments_table`) and ``metrics.json``'s ``arguments`` all read :func:`recipe_schema`.

Example:
    >>> from pyromix.recipes import get_recipe
    >>> schema = recipe_schema(get_recipe("gan"))
    >>> schema["epochs"].default, schema["epochs"].reference
    (250, 'Soons (2020), 2.3')
    >>> schema["dropout"].check(1.5)
    Traceback (most recent call last):
    ...
    ValueError: dropout: expected a probability in [0, 1), got 1.5
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import torch

from ..evaluable import EVAL_LABELS
from ..likelihoods import LIKELIHOOD_ARGUMENTS, LIKELIHOODS
from ..flows import infer_levels
from ..schema import Argument, Interval, Options, check_value, inferred_argument

if TYPE_CHECKING:
    from .registry import Recipe

__all__ = [
    "MAX_SEED",
    "MAX_FLOAT",
    "COMMON_ARGUMENTS",
    "CLUSTERS",
    "LEVELS",
    "SHARED_ARGUMENTS",
    "resolve_arguments",
    "resolve_levels",
    "common_argument",
    "recipe_schema",
    "resolve_clusters",
    "arguments_table",
]

MAX_SEED = 2**32 - 1  # pyro.set_rng_seed seeds NumPy too, whose seeds stop here
MAX_FLOAT = float(torch.finfo(torch.float32).max)  # a learning rate or weight beyond overflows

#: The training, network, likelihood and data arguments of every recipe, with their defaults.
COMMON_ARGUMENTS: tuple[Argument, ...] = (
    Argument("latent_dim", int, 10, "size of z", low=1),
    Argument(
        "hidden", list[int], [256, 256], "hidden widths, comma-separated (e.g. 256,256)", low=1
    ),
    Argument("arch", str, "mlp", "encoder/decoder architecture", choices=("mlp", "conv")),
    Argument("gated", bool, False, "gated dense hidden layers", reference="Dauphin et al. (2017)"),
    Argument(
        "likelihood",
        str,
        "auto",
        "observation model: bernoulli, gaussian (a learned std per dimension), heteroscedastic "
        "(mean and log-variance from the decoder), logistic or logistic_mixture (discretised, "
        "for data on L levels); auto picks from the data and the run records why",
        choices=("auto", *LIKELIHOODS),
    ),
    Argument("std_min", float, 1e-3, "floor of the Gaussian stds", low=0, closed="neither"),
    *LIKELIHOOD_ARGUMENTS,
    Argument(
        "analytic_kl",
        bool,
        True,
        "KL in closed form where Pyro has it (--mc-kl: Monte-Carlo)",
        reference="Kingma and Welling (2014), eq. 10",
    ),
    Argument("particles", int, 1, "samples per point in the objective (IWAE k)", low=1),
    Argument("epochs", int, 200, "training epochs", low=1),
    Argument("batch_size", int, 100, "mini-batch size", low=1),
    Argument("lr", float, 1e-3, "Adam learning rate", low=0, high=MAX_FLOAT, closed="right"),
    Argument(
        "warmup",
        int,
        0,
        "KL warm-up epochs (0: none; None: a quarter of the epochs)",
        low=0,
        none=True,
    ),
    Argument("beta", float, 1.0, "final KL weight (1: the ELBO)", low=0, high=MAX_FLOAT),
    Argument(
        "patience",
        int,
        30,
        "early-stopping patience in epochs (None: no early stopping)",
        low=1,
        none=True,
    ),
    Argument("seed", int, 0, "seed for initialisation and training", low=0, high=MAX_SEED),
    Argument(
        "binarize",
        str,
        "auto",
        "binarisation of [0,1] data (auto: dynamic for a Bernoulli likelihood on non-binary data)",
        choices=("auto", "none", "static", "dynamic"),
    ),
    Argument("split_seed", int, 0, "seed of the train/val/test split", low=0, high=MAX_SEED),
    Argument(
        "limit", int, None, "use at most this many points per split (default: all)", low=1,
        none=True,
    ),
    Argument(
        "labeled",
        float,
        0,
        "reveal N training labels, or a fraction such as 0.1, to the model (stratified by class, "
        "seeded by --split-seed; 0: unsupervised)",
        accepts=(
            Interval(int, 0, text="a count >= 0"),
            Interval(float, 0, 1, closed="right", text="a fraction in (0, 1]"),
        ),
    ),
    Argument(
        "eval_labels",
        str,
        "hidden",
        "score the test split with its labels hidden (log p(x), y summed out) or revealed "
        "(log p(x, y), or log p(x | y) for a model without a prior on y); recorded with the run",
        choices=EVAL_LABELS,
    ),
)

#: K, the clusters of the mixture, CP-VAE and M2 recipes (resolved by :func:`resolve_clusters`).
CLUSTERS = Argument(
    "clusters", int, None, "number of clusters K (default: the data's classes, else 10)", low=1,
    none=True,
)
_COMMON = {a.name: a for a in COMMON_ARGUMENTS}


def common_argument(name: str, **changes: Any) -> Argument:
    """The common argument ``name`` with ``changes``: a recipe's own default and its reference.

    Example:
        >>> common_argument("epochs", default=250).default
        250
    """
    return _COMMON[name].replace(**changes)


def recipe_schema(recipe: Recipe) -> dict[str, Argument]:
    """Every argument of ``recipe`` by name: the common ones, its own declarations, then its plain
    ``defaults`` (a default for a declared name replaces that default; another name becomes an
    argument typed by its default).

    A default that a common argument's constraints refuse is the recipe's own choice (a flow's
    ``likelihood="flow"``): it is accepted for this recipe too.
    """
    schema = dict(_COMMON)
    schema.update((a.name, a) for a in recipe.arguments)
    for name, value in recipe.defaults.items():
        known = schema.get(name) or SHARED_ARGUMENTS.get(name, (None,))[0]
        if known is None:
            schema[name] = inferred_argument(name, value)
            continue
        schema[name] = known
        if known.default != value or type(known.default) is not type(value):
            accepts = known.accepts
            if accepts and not _accepted(known, value):
                accepts = (Options(value), *accepts)
            schema[name] = known.replace(default=value, accepts=accepts)
    return schema


def _accepted(argument: Argument, value: Any) -> bool:
    try:
        argument.check(value)
    except ValueError:
        return False
    return True


#: L, the levels of discrete data (resolved by :func:`resolve_levels`).
LEVELS = Argument(
    "levels",
    int,
    "auto",
    "L, the levels of discrete data, dequantised uniformly (auto: read off the data, 2 when "
    "binarised; None: continuous data, standardised)",
    accepts=(Options("auto"), None, Interval(int, 2)),
)


def resolve_levels(args: dict, dataset: Any) -> None:
    """``levels="auto"``: 2 for binary data, else L read off the training split (None when it
    sits on no grid of levels)."""
    if args["levels"] == "auto":
        args["levels"] = 2 if dataset.is_binary else infer_levels(dataset.train.x)
    check_value("levels", args["levels"], None, Interval(int, 2))


def resolve_clusters(args: dict, dataset: Any) -> None:
    """``clusters`` None becomes the data's classes (else 10), at most the training points. A
    recipe's ``resolve``."""
    if args["clusters"] is None:
        args["clusters"] = dataset.num_classes or 10
    if args["clusters"] > len(dataset.train):
        raise ValueError(
            f"clusters: expected at most the {len(dataset.train)} training points, "
            f"got {args['clusters']}"
        )


#: Arguments of several families, typed and resolved from the data wherever a recipe has them,
#: by name, a plugin's plain ``defaults`` entry included: ``(argument, resolve(args, dataset))``.
SHARED_ARGUMENTS = {"clusters": (CLUSTERS, resolve_clusters), "levels": (LEVELS, resolve_levels)}


def resolve_arguments(recipe: Recipe, args: dict, dataset: Any) -> None:
    """Fill and check the arguments that depend on the data: the shared ones the recipe has
    (:data:`SHARED_ARGUMENTS`), then its own ``resolve``."""
    for name, (_, resolve) in SHARED_ARGUMENTS.items():
        if name in args and name in recipe.defaults:
            resolve(args, dataset)
    if recipe.resolve is not None:
        recipe.resolve(args, dataset)


def _row(a: Argument) -> str:
    default = ",".join(map(str, a.default)) if isinstance(a.default, (list, tuple)) else a.default
    cells = [f"`{a.flag}`", f"`{default}`", a.describe(), a.help, a.reference or "-"]
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def arguments_table(recipes: Mapping[str, Recipe]) -> str:
    """Markdown: the common arguments (default, accepted values, help, reference), then each
    recipe's own arguments and the defaults it changes."""
    rows = [
        "| argument | default | accepts | meaning | reference |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines = ["### Every recipe", "", *rows, *map(_row, COMMON_ARGUMENTS), ""]
    for name, recipe in recipes.items():
        own = [a for a in recipe_schema(recipe).values() if _COMMON.get(a.name) != a]
        if not own:
            continue
        lines += [f"### {name}", "", *rows, *map(_row, own), ""]
    return "\n".join(lines)
