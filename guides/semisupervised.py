"""The M2 guide: a classifier q(y | x) and a label-conditioned encoder q(z | x, y)."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from torch import nn
from torch.nn import functional as F

from pyromix.local_params import LocalModule
from pyromix.models.mixture import with_category
from pyromix.sites import DATA_PLATE, Y, Z

__all__ = ["SemiSupervisedGuide"]


class SemiSupervisedGuide(LocalModule):
    r"""``q(y | x) q(z | x, y)`` of M2 (Kingma et al. 2014, eq. 4), y enumerated where hidden.

    ``q(y | x) = Cat(softmax(classifier(x)))`` covers the model's ``"y_unobserved"`` site under
    ``poutine.mask(~y_mask)``, marked for parallel enumeration, so ``TraceEnum_ELBO`` sums the
    hidden labels out exactly (eq. 7) while revealed points use their label (eq. 6); without
    enumeration (importance sampling) y is drawn from q(y | x). ``q(z | x, y)`` is a Normal
    from ``encoder([x, one_hot(y)])``.

    Arguments:
        classifier: x -> K logits.
        encoder: ``[x, one_hot(y)]`` -> ``Independent(Normal)`` over z (a
            :class:`pyromix.nn.NormalHead`).
        num_classes: K.

    References:
        Kingma et al. (2014), eq. 4, 6-9.
    """

    def __init__(self, classifier: nn.Module, encoder: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.classifier, self.encoder, self.num_classes = classifier, encoder, num_classes

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None, y_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        n = x.shape[0]
        if y is None:
            y, y_mask = x.new_zeros(n, dtype=torch.long), x.new_zeros(n, dtype=torch.bool)
        with pyro.plate(DATA_PLATE, n):
            with poutine.mask(mask=~y_mask):
                q_y = dist.Categorical(logits=self.classifier(x))
                hidden = pyro.sample(f"{Y}_unobserved", q_y, infer={"enumerate": "parallel"})
            y = torch.where(y_mask, y, hidden)
            return pyro.sample(Z, self.encoder(self._with_label(x, y)))

    def _with_label(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return with_category(x, F.one_hot(y, self.num_classes))

    @torch.no_grad()
    def cluster_probs(self, x: torch.Tensor) -> torch.Tensor:
        """q(y | x), shape (N, K): the classifier (argmax is the predicted class)."""
        return torch.softmax(self.classifier(x), -1)

    def log_class_probs(self, x: torch.Tensor) -> torch.Tensor:
        """log q(y | x), shape (N, K), with gradients: the classification term's input."""
        return torch.log_softmax(self.classifier(x), -1)

    @torch.no_grad()
    def latent_mean(self, x: torch.Tensor) -> torch.Tensor:
        """E_q[z | x] = sum_y q(y | x) E[z | x, y], shape (N, latent_dim)."""
        labels = torch.arange(self.num_classes, device=x.device).unsqueeze(-1)  # (K, 1)
        means = self.encoder(self._with_label(x, labels)).mean  # (K, N, d)
        return (self.cluster_probs(x).T.unsqueeze(-1) * means).sum(0)
