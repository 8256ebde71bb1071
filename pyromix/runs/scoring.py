"""The test-split metrics of ``metrics.json``: held-out log-likelihood and ELBO with their
footing, clustering scores, collapse diagnostics and the run's resolved arguments."""

from __future__ import annotations

from typing import Any

import pyro
import torch

from ..diagnostics import active_units, cluster_usage, collapse_warnings
from ..evaluable import (
    EVAL_LABELS,
    MARGINAL,
    PREDICTIVE,
    label_quantity,
    revealed_batch,
    with_quantity,
)


from ..evaluate import (
    LogLikelihood,
    bits_per_dim,
    clustering_scores,
    fit_classifier,
    latent_gmm,
    log_likelihood,
    mode_coverage,
)


from ..footing import footing
from ..labels import accepts_labels
from ..protocol import capabilities
from ..recipes import get_recipe
from ..recipes.arguments import recipe_schema
from .readouts import cluster_probabilities
from .run import Run, weights_epoch

__all__ = [
    "evaluate_run",
    "NO_LIKELIHOOD",
    "COVERAGE_SAMPLES",
    "evaluate_points",
    "run_arguments",
    "skipped_features",
]


def evaluate_run(
    run: Run, num_samples: int = 1000, *, eval_labels: str | None = None
) -> dict[str, Any]:
    """The test-split metrics of ``metrics.json``; repeatable (seeded by the run's seed).

    ``eval_labels`` (default: the run's ``eval_labels`` argument, ``"hidden"``) says how the
    test labels reach the model: hidden, giving log p(x) with hidden labels summed out where
    the guide enumerates them, or ``"revealed"``, giving log p(x, y) (log p(x | y) for a model
    without a prior on y). ``footing`` and ``quantity`` record which; ``summed_sites`` and
    ``global_sites`` the sites that evaluation summed exactly or drew once per sample for every
    point (then the score is the held-out predictive density, :mod:`pyromix.evaluable`);
    ``weights_epoch`` the epoch whose weights were scored; ``samples_warning`` is there when
    most points have Pareto k > 0.7.

    Log-likelihood and ELBO are in nats per data point, averaged over the test split; the ELBO
    is estimated from the same S importance samples. ``bits_per_dim`` is given for binary data.
    With labels, ``gmm_acc``/``gmm_nmi``/``gmm_ari`` score a GMM on the test latent means with as
    many components as classes (Chowdhury et al., 4.2), or ``gmm_skipped`` says why no GMM could be
    fitted (latent means collapsed or non-finite, as after a run diverged), and for clustering
    models ``acc``/``nmi``/``ari`` score :func:`cluster_probabilities`' argmax.
    ``prior_is_approximate`` is true where the
    prior density is an estimate (the implicit prior, Takahashi et al. (2019) Table 2's "≈"); such a prior's
    ``prior_log_normalizer`` (log of its integral, 0 when exact; Monte Carlo, biased low) says by
    about how much, and ``test_log_likelihood_normalized`` is the log-likelihood with the prior
    divided by that integral, a proper density (log p(x) shifts by exactly -log Z).
    """
    return evaluate_points(run, num_samples, eval_labels=eval_labels)[0]


NO_LIKELIHOOD = (
    "a GAN is an implicit model: x = G(z) has no density, so it has no log-likelihood, ELBO or "
    "bits/dim; judge it by its generations and the mode coverage of a classifier"
)


COVERAGE_SAMPLES = 1000


def _implicit_model_metrics(run: Run) -> dict[str, Any]:
    """What can be said of a model without a likelihood: its mode coverage on labelled data."""
    metrics: dict[str, Any] = {"test_log_likelihood": None, "note": NO_LIKELIHOOD}
    data, classes = run.dataset, run.dataset.num_classes
    if data.train.y is None or not classes:
        return metrics
    classifier = fit_classifier(data.train.x, data.train.y, seed=run.args["seed"])
    generated = run.model.generate(COVERAGE_SAMPLES)
    metrics.update(mode_coverage(generated, classifier, classes))
    metrics["coverage_samples"] = COVERAGE_SAMPLES
    metrics["classifier_test_accuracy"] = float(
        (classifier(data.test.x) == data.test.y.cpu().numpy()).mean()
    )
    return metrics


def evaluate_points(
    run: Run, num_samples: int = 1000, *, eval_labels: str | None = None
) -> tuple[dict[str, Any], LogLikelihood | None]:
    """:func:`evaluate_run`'s metrics and the per-point
    :class:`~pyromix.evaluate.LogLikelihood` behind them; None for a model without a
    likelihood, a GAN, whose metrics say so in ``note`` and give its mode coverage instead
    (:func:`pyromix.evaluate.mode_coverage`)."""
    pyro.set_rng_seed(run.args["seed"])
    test = run.dataset.test
    history = run.history
    metrics: dict[str, Any] = {
        "model": run.name,
        "dataset": run.args["dataset"],
        "seed": run.args["seed"],
        "split_seed": run.args["split_seed"],
        "epochs": history.epochs,
        "best_epoch": None if history.best_epoch is None else history.best_epoch + 1,
        "stopped": history.stopped,
        "train_seconds": sum(history.seconds),
        "capture": history.capture,
        "test_points": len(test),
        "footing": footing(run.args),
        "weights_epoch": weights_epoch(run),
        "arguments": run_arguments(run),
    }
    if run.args["likelihood"] == "none":
        metrics |= _implicit_model_metrics(run)
        return {**metrics, "warnings": collapse_warnings(metrics)}, None
    mode = run.args.get("eval_labels", "hidden") if eval_labels is None else eval_labels
    if mode not in EVAL_LABELS:
        raise ValueError(f"eval_labels: expected one of {EVAL_LABELS}, got {mode!r}")
    if mode == "revealed" and not all(map(accepts_labels, (run.model, run.guide))):
        raise ValueError(
            f"eval_labels: 'revealed' needs a model and guide that take labels; the {run.name} "
            "recipe's have no y_mask keyword (pyromix.labels)"
        )
    # hidden: a labelled run's test labels all hidden (test.batch reveals none), y summed out
    batch = revealed_batch(test) if mode == "revealed" else test.batch(slice(None))
    ll = log_likelihood(run.model, run.guide, test.x, num_samples, y=batch.y, y_mask=batch.y_mask)
    quantity = MARGINAL
    if mode == "revealed":
        quantity = label_quantity(run.model, revealed_batch(test, slice(0, 2)))
    if ll.global_sites:
        quantity = PREDICTIVE if mode == "hidden" else f"{PREDICTIVE}; {quantity}"
    summary = ll.summary()
    metrics |= {
        "footing": with_quantity(footing(run.args), quantity),
        "quantity": quantity,
        "eval_labels": mode,
        "estimator": ll.estimator(),
        "summed_sites": list(ll.summed_sites),
        "global_sites": list(ll.global_sites),
        "test_elbo": summary["elbo"],
        "test_log_likelihood": summary["log_likelihood"],
        "is_samples": num_samples,
        "pareto_k_max": summary["pareto_k_max"],
        "pareto_k_share_above_0.7": summary["pareto_k_share_above_0.7"],
        "likelihood": run.args["likelihood"],
        "binarize": run.args["binarize"],
        "prior_is_approximate": bool(getattr(run.model, "prior_is_approximate", False)),
    }
    if "likelihood_auto" in run.args:  # why likelihood="auto" chose it
        metrics["likelihood_auto"] = run.args["likelihood_auto"]
    if hasattr(run.model, "log_normalizer"):  # how far an estimated prior is from normalised
        log_z = run.model.log_normalizer()
        metrics["prior_log_normalizer"] = log_z
        metrics["test_log_likelihood_normalized"] = summary["log_likelihood"] - log_z
    metrics["skipped"] = skipped_features(run)
    warning = ll.too_few_samples()
    if warning:
        metrics["samples_warning"] = warning
    if run.dataset.is_binary or run.args.get("levels"):  # a log-probability of discrete levels
        metrics["bits_per_dim"] = bits_per_dim(summary["log_likelihood"], run.dataset.data_dim)
    # Scores count the test points whose label is known (clustering_scores leaves -1 out).
    truth = None if test.y is None else test.y.cpu()
    known = None if truth is None else truth >= 0
    if known is not None and not known.all():
        metrics["test_points_labelled"] = int(known.sum())
    scored = known is not None and bool(known.any())
    probs = cluster_probabilities(run, test.x)
    if probs is not None:
        assigned = probs.argmax(-1).cpu()
        metrics["clusters_used"] = int(assigned.unique().numel())
        metrics |= cluster_usage(assigned, probs.shape[-1])
        if scored:
            metrics.update(clustering_scores(truth.numpy(), assigned.numpy()))
        if scored and run.dataset.train.labeled is not None:
            # trained on labels: classes are the labels, no matching
            metrics["test_accuracy"] = float((assigned[known] == truth[known]).float().mean())
    z = None
    if hasattr(run.guide, "latent_mean") and len(test) > 1:
        with torch.no_grad():
            z = run.guide.latent_mean(test.x)
        metrics |= active_units(z)
    classes = run.dataset.num_classes
    if scored and classes and classes > 1 and z is not None:
        try:
            labels = latent_gmm(z, classes, seed=run.args["seed"])
        except ValueError as e:  # collapsed or non-finite latent means (a diverged run)
            metrics["gmm_skipped"] = str(e).splitlines()[0]
        else:
            metrics.update(clustering_scores(truth.numpy(), labels, prefix="gmm_"))
    metrics["warnings"] = collapse_warnings(metrics)
    if run.restarts:
        metrics["restarts"] = run.restarts
    return metrics, ll


def run_arguments(run: Run) -> dict[str, Any]:
    """The run's recipe arguments as its schema declares them, resolved (``clusters`` from the
    data, ``likelihood`` from ``"auto"``) and typed: ``metrics.json``'s ``arguments``."""
    schema = recipe_schema(get_recipe(run.name))
    return {name: run.args[name] for name in schema if name in run.args}


def skipped_features(run: Run) -> dict[str, str]:
    """What the run's report leaves out for want of an optional method, and why
    (:func:`pyromix.protocol.capabilities`); only features that would apply to its data."""
    image = run.dataset.image_shape is not None
    relevant = {
        "samples": True,
        "latents": True,
        "clusters": True,
        "reconstructions": image,
        "manifold": image and run.args.get("latent_dim") == 2,
    }
    reasons = capabilities(run.model, run.guide)
    if reasons["latents"] is None and len(run.dataset.test) < 2 and run.args.get("latent_dim") != 2:
        reasons["latents"] = (
            f"the test split has {len(run.dataset.test)} point; projecting latents on their "
            "principal components needs at least 2"
        )
    return {f: reasons[f] for f, applies in relevant.items() if applies and reasons[f] is not None}
