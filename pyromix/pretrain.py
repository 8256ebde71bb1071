"""Initialisation by autoencoder pretraining, then a GMM on the codes (Li et al. 2020, III-B; VaDE).

The networks are first trained as a deterministic autoencoder, ``x -> encode(x) -> p(x | z)``;
a Gaussian mixture fitted to the codes then sets the mixture prior's means, stds and weights.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from sklearn.mixture import GaussianMixture
from torch import nn
from tqdm.auto import tqdm

from .data import Dataset
from .train import History, TrainingDiverged, non_finite_values, unique_parameters

__all__ = ["pretrain_autoencoder", "init_mixture_prior", "fit_cluster_head", "check_pretrainable"]


def pretrain_autoencoder(
    encode: Callable[[torch.Tensor], torch.Tensor],
    decode: Callable[[torch.Tensor], torch.distributions.Distribution],
    modules: Sequence[nn.Module],
    data: Dataset,
    *,
    epochs: int,
    batch_size: int = 100,
    lr: float = 1e-3,
    seed: int = 0,
    progress: bool = False,
) -> list[float]:
    """Train ``encode`` and ``decode`` as an autoencoder minimising ``-log p(x | z = encode(x))``.

    Arguments:
        encode: deterministic encoder x -> z.
        decode: z -> the likelihood's distribution over x.
        modules: the modules whose parameters are trained (encoder and decoder).
        data: dataset; its train split is used (dynamically binarised if it says so).
        epochs, batch_size, lr, seed: as in :func:`pyromix.train.fit`.

    Returns:
        The mean reconstruction loss of each epoch (nats per data point).
    """
    optimizer = torch.optim.Adam(unique_parameters(*modules), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for epoch in tqdm(range(epochs), desc="pretrain", unit="epoch", disable=not progress):
        total = 0.0
        for step, (x, _) in enumerate(data.train_batches(batch_size, generator)):
            optimizer.zero_grad(set_to_none=True)
            where = ("autoencoder pretraining", epoch, step)
            loss = _checked(lambda: -decode(encode(x)).log_prob(x).sum(), *where)  # noqa: B023
            loss.backward()
            optimizer.step()
            total += loss.item()
        losses.append(total / len(data.train))
    return losses


def _checked(loss: Callable[[], torch.Tensor], what: str, epoch: int, step: int) -> torch.Tensor:
    """``loss()``, or :class:`TrainingDiverged` naming ``what``, the epoch and the step when it is
    not finite or a distribution refuses non-finite arguments (weights grown to overflow)."""
    try:
        value = loss()
    except ValueError as error:
        if not non_finite_values(error):
            raise
        value = None
    if value is None or not torch.isfinite(value):
        raise TrainingDiverged(
            f"non-finite {what} loss at epoch {epoch + 1}, step {step + 1} "
            "(try a lower learning rate)",
            History(),
        )
    return value


@torch.no_grad()
def init_mixture_prior(model: nn.Module, codes: torch.Tensor, *, seed: int = 0) -> GaussianMixture:
    """Fit a diagonal GMM with ``model.num_clusters`` components to ``codes`` and copy it into the
    model's prior: means, stds (above the model's ``prior_std_min``) and, if learned, weights.

    Returns:
        The fitted scikit-learn GaussianMixture.
    """
    k = model.num_clusters
    if not torch.isfinite(codes).all():
        raise TrainingDiverged("non-finite codes after autoencoder pretraining", History())
    if codes.shape[0] < k:
        raise ValueError(
            f"codes: need at least {k} points to fit {k} components, got {codes.shape[0]}"
        )
    gmm = GaussianMixture(k, covariance_type="diag", n_init=3, random_state=seed)
    gmm.fit(codes.detach().cpu().double().numpy())
    like = model.loc
    model.loc = torch.as_tensor(gmm.means_, dtype=like.dtype, device=like.device)
    std = np.sqrt(gmm.covariances_) - model.prior_std_min
    raw = np.log(np.expm1(np.maximum(std, 1e-3)))  # inverse softplus
    model.raw_scale = torch.as_tensor(raw, dtype=like.dtype, device=like.device)
    if model.learn_weights:
        model.logits = torch.as_tensor(np.log(gmm.weights_), dtype=like.dtype, device=like.device)
    return gmm


def fit_cluster_head(
    logits: Callable[[torch.Tensor], torch.Tensor],
    modules: Sequence[nn.Module],
    x: torch.Tensor,
    targets: torch.Tensor,
    *,
    epochs: int,
    batch_size: int = 100,
    lr: float = 1e-3,
    seed: int = 0,
) -> list[float]:
    """Fit q(y | x) to target cluster probabilities (the GMM's responsibilities on the codes).

    Minimises the cross-entropy ``-sum_k t_k log softmax(logits(x))_k``, so the guide's cluster
    readout starts where the GMM initialisation of the prior put the clusters.

    Returns:
        The mean cross-entropy of each epoch.
    """
    optimizer = torch.optim.Adam(unique_parameters(*modules), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for epoch in range(epochs):
        total = 0.0
        for step, index in enumerate(
            torch.randperm(x.shape[0], generator=generator).split(batch_size)
        ):
            optimizer.zero_grad(set_to_none=True)
            index = index.to(x.device)
            loss = _checked(
                lambda: -(targets[index] * torch.log_softmax(logits(x[index]), -1)).sum(),  # noqa: B023
                "cluster-head fitting",
                epoch,
                step,
            )
            loss.backward()
            optimizer.step()
            total += loss.item()
        losses.append(total / x.shape[0])
    return losses


def check_pretrainable(model: nn.Module, guide: nn.Module) -> None:
    """Check, before any work, that a model and guide have what mixture pretraining uses
    (:func:`pyromix.recipes.pretrain_mixture`), so a user's own pair is told in one line.

    What it uses: the guide's ``autoencoder(x)`` (deterministic codes) or ``encoder(x)`` (a
    distribution whose mean is the code); the model's ``likelihood`` (``z -> p(x | z)``),
    ``num_clusters``, ``prior_std_min`` and ``learn_weights``, and its prior's ``loc``,
    ``raw_scale`` (and ``logits`` when ``learn_weights``) as ``PyroParam`` attributes, which
    the GMM's values replace.

    Raises:
        ValueError: naming every missing piece.
    """
    from pyro.nn import PyroModule

    missing = []
    if not (hasattr(guide, "autoencoder") or hasattr(guide, "encoder")):
        missing.append("guide.autoencoder(x) or guide.encoder(x)")
    missing += [f"model.{name}" for name in ("likelihood", "num_clusters", "prior_std_min",
                                             "learn_weights") if not hasattr(model, name)]
    params = ["loc", "raw_scale"] + (["logits"] if getattr(model, "learn_weights", False) else [])
    local = getattr(model, "_pyro_params", {}) if isinstance(model, PyroModule) else {}
    missing += [f"model.{name} as a PyroParam" for name in params if name not in local]
    if missing:
        raise ValueError(
            f"pretrain_mixture: the {type(model).__name__} / {type(guide).__name__} pair lacks "
            f"{', '.join(missing)}; expected what pyromix.pretrain.check_pretrainable lists "
            "(or pass pretrain_epochs=0)"
        )

