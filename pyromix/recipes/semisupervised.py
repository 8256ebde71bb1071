"""M2, the semi-supervised VAE (Kingma et al. 2014): labels observed where revealed."""

from __future__ import annotations

import torch
from torch import nn

from pyromix.guides import SemiSupervisedGuide
from pyromix.models import SemiSupervisedVAE

from ..data import Dataset
from ..labels import Batch
from ..nn import NormalHead, glorot_init_, mlp
from .blocks import build_body, build_likelihood, enum_objective
from ..schema import Argument
from .arguments import CLUSTERS, common_argument
from .registry import Recipe, register_recipe

KINGMA = "Kingma et al. (2014)"
#: M2's arguments: the revealed labels and the classification term's weight.
M2_ARGUMENTS = (
    CLUSTERS,
    common_argument("labeled", default=0.1),
    Argument(
        "alpha",
        float,
        0.1,
        "weight of the classification term, as a multiple of N",
        low=0,
        reference=f"{KINGMA}, eq. 9 (alpha = 0.1 N)",
    ),
)

__all__ = ["M2_ARGUMENTS", "ClassificationTerm", "build_m2", "classification_term"]


def build_m2(args: dict) -> tuple[nn.Module, nn.Module]:
    """M2's model and guide: classifier and encoder as wide as ``hidden``; the encoder and the
    decoder read the one-hot label beside x and z."""
    k, d, width = args["clusters"], args["latent_dim"], args["hidden"]
    model = SemiSupervisedVAE(build_likelihood(args, d + k), d, k)
    classifier = glorot_init_(nn.Sequential(build_body(args), nn.Linear(width[-1], k)))
    encoder = NormalHead(mlp(args["data_dim"] + k, width, gated=args["gated"]), d)
    return model, SemiSupervisedGuide(classifier, glorot_init_(encoder), k)


class ClassificationTerm:
    r"""M2's classification loss, ``alpha E_labelled[-log q(y | x)]`` (Kingma et al. 2014, eq. 9).

    A :data:`pyromix.train.LossTerm`: in a batch it is ``alpha / N_l`` times the sum of
    ``-log q(y | x)`` over its revealed points, so an epoch adds ``alpha`` times the mean over
    the ``N_l`` revealed labels.

    Arguments:
        alpha: the weight alpha (the paper's 0.1 N, N the training-set size).
        num_labeled: N_l, the revealed labels of the training split (>= 1).

    Example:
        >>> term = ClassificationTerm(alpha=126.0, num_labeled=126)
        >>> term.weight
        1.0
    """

    def __init__(self, alpha: float, num_labeled: int) -> None:
        if not alpha >= 0 or num_labeled < 1:
            raise ValueError(
                f"expected alpha >= 0 and num_labeled >= 1, got {alpha} and {num_labeled}"
            )
        self.weight = alpha / num_labeled

    def __call__(self, model: nn.Module, guide: nn.Module, batch: Batch) -> torch.Tensor:
        if batch.y is None:
            return batch.x.new_zeros(())
        log_q = guide.log_class_probs(batch.x[batch.y_mask])
        return -self.weight * log_q.gather(-1, batch.y[batch.y_mask, None]).sum()


def classification_term(model: nn.Module, guide: nn.Module, data: Dataset, args: dict) -> list:
    """The recipe's ``loss_terms``: alpha = ``args["alpha"]`` x N over the revealed labels."""
    labeled = data.train.labeled
    if labeled is None or not args["alpha"]:
        return []
    return [ClassificationTerm(args["alpha"] * len(data.train), int(labeled.sum()))]


register_recipe(
    "m2",
    Recipe(
        "M2, semi-supervised: y ~ Cat, z ~ N(0, I), x | y, z; q(y|x) q(z|x,y), y observed "
        "where --labeled reveals it, enumerated elsewhere; + alpha classification term",
        build=build_m2,
        objective=enum_objective,
        arguments=M2_ARGUMENTS,
        loss_terms=classification_term,
    ),
)
