"""What a trained run's networks give: cluster readouts, the aggregated posterior,
reconstructions and samples."""

from __future__ import annotations

import torch

from ..protocol import capabilities
from ..resources import check_fits
from .run import Run

__all__ = [
    "EVAL_CHUNK",
    "cluster_probabilities",
    "CATEGORY_SOURCES",
    "aggregated_posterior",
    "reconstruct",
    "generate",
]


EVAL_CHUNK = 1000  # points per encoder pass where a whole split could be too large at once


@torch.no_grad()
def cluster_probabilities(run: Run, x: torch.Tensor) -> torch.Tensor | None:
    """The run's cluster readout for ``x``, shape (N, K), or None for models without clusters.

    q(y | x) from guides that have one; p(y | z) at the posterior mean for models that sum y out
    (VaDE, Chowdhury et al. eq. 16-17).
    """
    if hasattr(run.guide, "cluster_probs"):
        return run.guide.cluster_probs(x)
    if hasattr(run.model, "cluster_posterior") and hasattr(run.guide, "latent_mean"):
        return run.model.cluster_posterior(run.guide.latent_mean(x))
    return None


CATEGORY_SOURCES = ("posterior", "prior")


@torch.no_grad()
def aggregated_posterior(run: Run, x: torch.Tensor | None = None) -> torch.Tensor | None:
    """q(c) = (1/n) sum_i q(c | x_i) over the training split (Lavda et al. 2020, eq. 14), shape (K,).

    For cluster models q(c | x) is :func:`cluster_probabilities`; for mixture priors (MG,
    VampPrior) it is the component responsibility p(k | z) at the posterior mean. None for
    models with neither.
    """
    x = run.dataset.train.x if x is None else x
    chunks = x.split(EVAL_CHUNK)
    probs = [cluster_probabilities(run, chunk) for chunk in chunks]
    if probs[0] is None:  # no cluster readout: a mixture prior's responsibilities, if any
        if not (getattr(run.model, "num_components", None) and hasattr(run.guide, "latent_mean")):
            return None
        probs = [run.model.component_posterior(run.guide.latent_mean(chunk)) for chunk in chunks]
    return torch.cat(probs).mean(0)


@torch.no_grad()
def reconstruct(run: Run, x: torch.Tensor) -> torch.Tensor:
    """Decoder means at the posterior mean of z (and the most probable c for decoders that see
    it, as CP-VAE's)."""
    z = run.guide.latent_mean(x)
    if getattr(run.model, "decoder_sees_y", False):
        index = cluster_probabilities(run, x).argmax(-1)
        z = run.model.decoder_input(z, run.model.category(index))
    return run.model.likelihood.mean(z)


def generate(
    run: Run, n: int, *, components=None, categories: str = "posterior"
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` decoder means from the prior, and their binarised draws for a Bernoulli likelihood.

    With ``components`` (an iterable of indices) ``n`` samples are drawn from each component in
    turn: the clusters of a mixture model, or the components of a mixture prior. Otherwise the
    category or component of each sample is drawn from the aggregated posterior q(c) over the
    training data (``categories="posterior"``, CP-VAE's generation, Lavda et al. (2020), 5 and eq. 14) or
    from the prior p(c) (``"prior"``); models without one ignore ``categories``.
    """
    if n < 1:
        raise ValueError(f"n: expected an integer >= 1, got {n}")
    if categories not in CATEGORY_SOURCES:
        raise ValueError(f"categories: expected one of {CATEGORY_SOURCES}, got {categories!r}")
    reason = capabilities(run.model, run.guide)["samples"]
    if reason is not None:
        raise ValueError(f"generate: the {run.name} run cannot sample: {reason} (pyromix.protocol)")
    components = None if components is None else list(components)
    # The means and their binarised draws, float32, on the device and again on the CPU.
    draws = n * (1 if components is None else max(1, len(components)))
    device = run.dataset.test.x.device
    check_fits(4 * draws * run.args["data_dim"] * 4, "n", device, " for the samples")
    if components is not None:
        means = torch.cat([run.model.generate(n, component=k) for k in components])
    else:
        weights = aggregated_posterior(run) if categories == "posterior" else None
        means = run.model.generate(n, weights=weights)
    binarized = torch.bernoulli(means) if run.args["likelihood"] == "bernoulli" else None
    return means.cpu(), None if binarized is None else binarized.cpu()
