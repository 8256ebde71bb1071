r"""What a run's held-out score is a log of, and whether its programs can be scored at all.

A run's test score is one of four quantities (its *footing* names it next to the event scored):

- ``log p(x)``: labels hidden, summed out where the guide enumerates them;
- ``log p(x, y)``: the test split's labels revealed (``eval_labels="revealed"``) to a model with a
  prior on y (a ``"y"`` site, observed);
- ``log p(x | y)``: labels revealed to a model that takes y as an input only (no y site);
- the held-out predictive density ``log p(x_n | data) ~ log (1/S) sum_s p(x_n | theta_s)``,
  ``theta_s ~ q(theta)``, for a model with a latent outside the data plate (a global theta).

:func:`check_evaluable` traces model and guide once on two training points before training
starts and refuses, by name, a program that takes labels but has no site for a hidden y (it
would be trained and scored at the placeholder label 0); it returns what evaluation will sum and
estimate.

References:
    Kingma, Rezende, Mohamed and Welling (2014), *Semi-supervised learning with deep generative
    models* (M2: log p(x, y) of labelled points, log p(x) of unlabelled ones). Vehtari, Gelman
    and Gabry (2017), *Practical Bayesian model evaluation using leave-one-out
    cross-validation and WAIC*, eq. 1-4 (the predictive density of held-out points).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

import pyro.util
import torch
from pyro import poutine

from .data import Dataset, Split
from .evaluate import eval_mode
from .importance import SiteError, importance_weights, probe_sites
from .labels import Batch, accepts_labels
from .local_params import keeps_params_local
from .sites import Y

__all__ = [
    "EVAL_LABELS",
    "MARGINAL",
    "JOINT",
    "CONDITIONAL",
    "PREDICTIVE",
    "Evaluability",
    "with_quantity",
    "revealed_batch",
    "label_quantity",
    "validate_as_trained",
    "check_evaluable",
]

#: How the test split's labels reach the model in evaluation.
EVAL_LABELS = ("hidden", "revealed")
MARGINAL = "log p(x)"
JOINT = "log p(x, y), test labels revealed"
CONDITIONAL = "log p(x | y), test labels revealed"
PREDICTIVE = "held-out predictive log p(x_n | data), global latents drawn from q"
LABEL_SITES = (Y, f"{Y}_observed", f"{Y}_unobserved")


def with_quantity(event: str, quantity: str) -> str:
    """A footing: the event scored (:func:`pyromix.footing.footing`) and, unless it is the plain
    log p(x), the quantity; two runs compare only when these strings are equal.

    Example:
        >>> with_quantity("density", MARGINAL), with_quantity("density", JOINT)
        ('density', 'density; log p(x, y), test labels revealed')
    """
    return event if quantity == MARGINAL else f"{event}; {quantity}"


def revealed_batch(split: Split, index: slice | torch.Tensor = slice(None)) -> Batch:
    """The points of ``split`` with every known label revealed (-1, unknown, stays hidden)."""
    if split.y is None:
        raise ValueError("eval_labels: 'revealed' needs a labelled test split; this data has none")
    y = split.y[index]
    known = y >= 0
    return Batch(split.x[index], torch.where(known, y, 0), known)


@dataclass(frozen=True)
class Evaluability:
    """What evaluating a run will do (see the module's docstring).

    Attributes:
        summed: the guide's enumerated sites, summed exactly, with their numbers of values.
        global_sites: latent sites outside the data plate.
        takes_labels: whether model and guide take revealed labels (``y_mask``).
        hidden_label: whether the programs have a site for a hidden y.
    """

    summed: dict[str, int]
    global_sites: tuple[str, ...]
    takes_labels: bool
    hidden_label: bool

    def describe(self) -> str:
        """One line for the user: the estimator the run's test score will use."""
        parts = ["importance-sampled with the guide as proposal"]
        if self.summed:
            sites = ", ".join(f"{name} ({k} values)" for name, k in self.summed.items())
            parts.append(f"enumerated sites summed exactly: {sites}")
        if self.global_sites:
            parts.append(
                f"global latents {', '.join(self.global_sites)}: the held-out predictive density"
            )
        return "; ".join(parts)


def _has_hidden_label(model, guide, hidden: Batch) -> bool:
    """Whether model or guide has a latent label site when every label is hidden."""
    args, kwargs = hidden.call()
    guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
    model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
    return _latent_label(guide_trace) or _latent_label(model_trace)


def _latent_label(trace) -> bool:
    return any(
        name in LABEL_SITES and site["type"] == "sample" and not site["is_observed"]
        for name, site in trace.nodes.items()
    )


@torch.no_grad()
@keeps_params_local
def label_quantity(model: Callable[..., Any], batch: Batch) -> str:
    """``JOINT`` when the model has an observed label site (a prior on y that the revealed
    labels are scored by), else ``CONDITIONAL`` (y is an input only)."""
    args, kwargs = batch.call()
    trace = poutine.trace(model).get_trace(*args, **kwargs)
    observed = any(
        name in LABEL_SITES and site["type"] == "sample" and site["is_observed"]
        for name, site in trace.nodes.items()
    )
    return JOINT if observed else CONDITIONAL


def validate_as_trained(dataset: Dataset) -> Dataset:
    """``dataset`` with its validation labels revealed when every known training label is:
    early stopping then scores the objective that training optimises (with labels), not a
    ``q(y | x)`` that a fully supervised run never trains."""
    train = dataset.train
    if train.labeled is None or train.y is None or dataset.val.y is None:
        return dataset
    known = train.y >= 0
    if not bool((train.labeled == known).all()):
        return dataset
    return replace(dataset, val=replace(dataset.val, labeled=dataset.val.y >= 0))


@keeps_params_local
def check_evaluable(
    model: Callable[..., Any], guide: Callable[..., Any], dataset: Dataset, args: dict[str, Any]
) -> Evaluability | None:
    """Trace the programs once on two training points, before any training, and refuse what
    could not be scored (a one-line ValueError naming the argument).

    Refused: a site whose density has no per-point share (an observation or factor outside the
    data plate; :class:`pyromix.importance.SiteError`); ``eval_labels="revealed"`` for programs
    that take no labels, or for data without test labels; programs that take labels but have no
    site for a hidden y (a model using y only as an input, a guide that neither enumerates nor
    samples y) while some training labels are hidden or ``eval_labels`` is ``"hidden"``: they
    would be trained or scored at the placeholder label 0.

    Returns:
        :class:`Evaluability`, or None for a model without a likelihood (a GAN) or programs
        that fail on the batch for another reason (non-finite data, a bug), which the first
        training step reports as it always has. The random
        state is left as it was, so a seeded run trains as it would without the check.
    """
    state = pyro.util.get_rng_state()
    try:
        with torch.no_grad():
            return _check_evaluable(model, guide, dataset, args)
    finally:
        pyro.util.set_rng_state(state)


def _check_evaluable(model, guide, dataset: Dataset, args: dict[str, Any]) -> Evaluability | None:
    if args.get("likelihood") == "none":  # a GAN: nothing to score, said by its metrics
        return None
    mode = args.get("eval_labels", "hidden")
    if mode not in EVAL_LABELS:
        raise ValueError(f"eval_labels: expected one of {EVAL_LABELS}, got {mode!r}")
    takes = accepts_labels(model) and accepts_labels(guide)
    if mode == "revealed" and not takes:
        raise ValueError(
            "eval_labels: 'revealed' needs a model and guide that take labels (a y_mask "
            "keyword, see pyromix.labels); this recipe's do not"
        )
    if mode == "revealed":
        revealed_batch(dataset.test, slice(0, 1))
    # two points of a training batch as fit draws them (binarised where it binarises)
    x = next(dataset.train_batches(2, torch.Generator().manual_seed(0), labeled=True)).x
    hidden = None
    if takes and dataset.train.y is not None:
        placeholder = torch.zeros(len(x), dtype=torch.long, device=x.device)
        hidden = Batch(x, placeholder, torch.zeros_like(placeholder, dtype=torch.bool))
    options = {} if hidden is None else {"y": hidden.y, "y_mask": hidden.y_mask}
    try:
        summed, global_sites = probe_sites(model, guide, x, **options)
        with eval_mode(model, guide):  # a global factor, undeclared batch dims: SiteError
            importance_weights(model, guide, x, 2, **options)
        hidden_label = hidden is None or _has_hidden_label(model, guide, hidden)
    except SiteError:
        raise
    except Exception:  # non-finite data, a program error: the first training step says which
        return None
    some_hidden = dataset.train.labeled is not None and not bool(
        (dataset.train.labeled == (dataset.train.y >= 0)).all()
    )
    if not hidden_label and dataset.train.labeled is not None and (some_hidden or mode == "hidden"):
        raise ValueError(
            "labeled: the model and guide take labels but have no site for a hidden y (neither "
            "enumerated nor sampled), so a point without its label would be trained or scored "
            "at the placeholder y = 0; reveal every training label (labeled=1.0) and evaluate "
            "with eval_labels='revealed' (log p(x | y)), or give the guide a y site"
        )
    return Evaluability(summed, global_sites, takes, hidden_label)
