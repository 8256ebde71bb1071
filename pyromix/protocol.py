"""What pyromix asks of a model and a guide: one required shape, and optional methods.

**Required.** ``model(x, y=None)`` and ``guide(x, y=None)`` are Pyro programs (``PyroModule``s,
plain callables or partials) whose per-point sample sites sit in ``pyro.plate("data", N)``, the
model observing ``x`` at the site ``"x"``. That is all training (:func:`pyromix.train.fit`) and
the importance-sampled log p(x) (:func:`pyromix.evaluate.log_likelihood`) need; labels reach them
as :mod:`pyromix.labels` describes.

**Optional.** Everything else evaluation, reports, ``pyromix sample`` and
:class:`pyromix.estimators.MixtureClustering` use is one of the small protocols below. A report
computes what the pair supports (:func:`capabilities`) and lists what it skipped and why in
``metrics.json`` under ``"skipped"``; nothing fails for a missing optional method.

=====================  =========================================  ===============================
feature                what it needs                              what uses it
=====================  =========================================  ===============================
``samples``            model :class:`Generative`                   samples.png, ``pyromix sample``
``component_samples``  model :class:`Generative` and               one sample row per component,
                       ``num_clusters`` or ``num_components``      ``sample --component K``
``latents``            guide :class:`Encoding`                     latents.png, ``gmm_*`` scores,
                                                                   ``transform``
``reconstructions``    guide :class:`Encoding`, model              reconstructions.png
                       :class:`Decoding`
``manifold``           model :class:`Decoding`, 2-D latent; a      manifold.png
                       model whose decoder reads more than z
                       gives ``decode_manifold(z)``
``clusters``           guide :class:`Clustering`, or model         ``acc``/``nmi``/``ari``,
                       ``cluster_posterior(z)`` + guide            ``predict``, ``clusters_used``
                       :class:`Encoding`
``prior_normalizer``   model ``log_normalizer()``                  ``prior_log_normalizer`` of an
                                                                   estimated prior
=====================  =========================================  ===============================

A saved run's arguments must also hold :data:`pyromix.runs.RUN_ARGS_KEYS` (what rebuilds its
data), which :func:`pyromix.runs.prepare_recipe` fills in for every recipe.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch

__all__ = [
    "Generative",
    "Encoding",
    "Decoding",
    "Clustering",
    "FEATURES",
    "capabilities",
]


@runtime_checkable
class Generative(Protocol):
    """A model that draws new data: ``n`` means (or draws) of x from the prior.

    ``component=k`` draws from the k-th cluster or prior component only; ``weights`` (K,)
    chooses each draw's component with those probabilities (the aggregated posterior, Lavda et al. (2020)
    eq. 14). Models without components may accept and ignore ``weights=None``.
    """

    def generate(
        self, n: int, *, component: int | None = None, weights: torch.Tensor | None = None
    ) -> torch.Tensor: ...


@runtime_checkable
class Encoding(Protocol):
    """A guide with a point representation of x: E_q[z | x], shape (N, latent_dim)."""

    def latent_mean(self, x: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class Clustering(Protocol):
    """A guide with a cluster readout q(y | x), shape (N, K), rows summing to 1."""

    def cluster_probs(self, x: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class Decoding(Protocol):
    """A model whose ``likelihood`` maps z to p(x | z) and has ``mean(z)``, the decoder mean."""

    likelihood: Any


def _decodes(model: Any) -> bool:
    return isinstance(model, Decoding) and callable(getattr(model.likelihood, "mean", None))


def _components(model: Any) -> int | None:
    return getattr(model, "num_clusters", None) or getattr(model, "num_components", None)


#: Each optional feature with the sentence a report gives when the model or guide lacks it.
FEATURES: dict[str, str] = {
    "samples": "the model has no generate(n, component=, weights=)",
    "component_samples": "the model has no num_clusters or num_components to draw from",
    "latents": "the guide has no latent_mean(x)",
    "reconstructions": "the guide has no latent_mean(x) or the model no likelihood.mean(z)",
    "manifold": "the model has no likelihood.mean(z)",
    "clusters": "the guide has no cluster_probs(x) and the model no cluster_posterior(z)",
    "prior_normalizer": "the model's prior is exact (no log_normalizer())",
}


def capabilities(model: Any, guide: Any) -> dict[str, str | None]:
    """For each of :data:`FEATURES`, None if the pair supports it, else the reason it does not.

    Example:
        >>> from pyromix.recipes import RECIPES, COMMON_DEFAULTS
        >>> args = {**COMMON_DEFAULTS, "data_dim": 4, "image_shape": None,
        ...         "likelihood": "bernoulli"}
        >>> reasons = capabilities(*RECIPES["vae"].build(args))
        >>> [feature for feature, reason in reasons.items() if reason is None]
        ['samples', 'latents', 'reconstructions', 'manifold']
        >>> reasons["clusters"]
        'the guide has no cluster_probs(x) and the model no cluster_posterior(z)'
    """
    generative, encoding = isinstance(model, Generative), isinstance(guide, Encoding)
    clusters = isinstance(guide, Clustering) or (
        encoding and callable(getattr(model, "cluster_posterior", None))
    )
    supported = {
        "samples": generative,
        "component_samples": generative and bool(_components(model)),
        "latents": encoding,
        "reconstructions": encoding and _decodes(model),
        "manifold": _decodes(model),
        "clusters": clusters,
        "prior_normalizer": callable(getattr(model, "log_normalizer", None)),
    }
    return {feature: None if ok else FEATURES[feature] for feature, ok in supported.items()}
