"""A warm start for CP-VAE on small data: autoencoder codes, a GMM, then q(c | x) and p(z | c).

Lavda et al. (2020) train CP-VAE from scratch on 60,000 MNIST images. On a small data set (the
1,257 training images of scikit-learn's digits) the categorical code q(c | x) starts at random
and the Gumbel-softmax gradient rarely sorts the points into classes before the decoder has
learnt to do without c. The mixture recipes' initialisation (Li et al. 2020, III-B; VaDE) gives
CP-VAE a start where c already means a cluster:

1. the encoder and decoder train as a deterministic autoencoder, ``x -> mu(x) -> p(x | mu, c)``,
   with the category input held at the uniform vector 1/K (no cluster yet);
2. a diagonal GMM with K components is fitted to the codes mu(x);
3. the cluster head of q(c | x) is fitted to the GMM's responsibilities (cross-entropy, the
   body fixed);
4. the conditional prior p(z | c) = N(mu_c, sigma_c) takes the moments of the codes that
   q(c | x) now produces, weighted by q(c | x), so that prior and posterior agree at the start.
"""

from __future__ import annotations

import torch
from torch import nn

from ..data import Dataset
from ..pretrain import fit_cluster_head, init_mixture_prior, pretrain_autoencoder

__all__ = ["warm_start_cpvae", "match_prior_moments"]


def _codes(guide: nn.Module, x: torch.Tensor, probs: torch.Tensor | None = None) -> torch.Tensor:
    """mu(x, pi) of the gated encoder, with ``probs`` for pi (default q(c | x))."""
    h = guide.body(x)
    if probs is None:
        probs = torch.softmax(guide.category_logits(h), -1)
    return guide.encoder(torch.cat([h, probs.expand(h.shape[0], -1)], -1)).mean


@torch.no_grad()
def match_prior_moments(model: nn.Module, codes: torch.Tensor, weights: torch.Tensor) -> None:
    """Set p(z | c)'s means and stds to the ``weights``-weighted moments of ``codes``.

    Arguments:
        model: a :class:`~pyromix.models.ConditionalPriorVAE` (``loc``, ``raw_scale``,
            ``prior_std_min``).
        codes: (N, D) latent codes.
        weights: (N, K) non-negative weights of each code in each component (q(c | x)).
    """
    if codes.ndim != 2 or weights.shape != (codes.shape[0], model.num_clusters):
        raise ValueError(
            f"weights: expected shape ({codes.shape[0]}, {model.num_clusters}) for codes of "
            f"shape {tuple(codes.shape)}, got {tuple(weights.shape)}"
        )
    mass = weights.sum(0).clamp_min(1e-8)[:, None]  # (K, 1)
    loc = weights.T @ codes / mass
    var = weights.T @ codes.square() / mass - loc.square()
    std = (var.clamp_min(0).sqrt() - model.prior_std_min).clamp_min(1e-3)
    like = model.loc
    model.loc = loc.to(like)
    model.raw_scale = (std + torch.log(-torch.expm1(-std))).to(like)  # inverse softplus


def warm_start_cpvae(
    model: nn.Module, guide: nn.Module, data: Dataset, args: dict
) -> torch.Tensor | None:
    """CP-VAE's ``initialize``: the warm start of the module docstring when ``args["warm_start"]``.

    The autoencoder and the cluster head train for ``pretrain_epochs`` each at ``lr``.

    Returns:
        The GMM's responsibilities on the training codes, (N, K), that q(c | x) was fitted to;
        None when ``warm_start`` is off or ``pretrain_epochs`` is 0.
    """
    if not args["warm_start"] or not args["pretrain_epochs"]:
        return None
    k = model.num_clusters
    uniform = torch.full((1, k), 1.0 / k, device=data.train.x.device)
    pretrain_autoencoder(
        lambda x: _codes(guide, x, uniform),
        lambda z: model.likelihood(torch.cat([z, uniform.expand(z.shape[0], -1)], -1)),
        [guide, model.likelihood],
        data,
        epochs=args["pretrain_epochs"],
        batch_size=args["batch_size"],
        lr=args["lr"],
        seed=args["seed"],
    )
    x = data.train.x
    with torch.no_grad():
        codes = _codes(guide, x, uniform)
    gmm = init_mixture_prior(model, codes, seed=args["seed"])
    targets = torch.as_tensor(gmm.predict_proba(codes.cpu().double().numpy()), dtype=codes.dtype)
    fit_cluster_head(
        lambda x: guide.category_logits(guide.body(x)),
        [guide.category_logits],
        x,
        targets.to(codes.device),
        epochs=args["pretrain_epochs"],
        batch_size=args["batch_size"],
        lr=args["lr"],
        seed=args["seed"],
    )
    with torch.no_grad():
        probs = torch.softmax(guide.category_logits(guide.body(x)), -1)
        match_prior_moments(model, _codes(guide, x, probs), probs)
    return targets
