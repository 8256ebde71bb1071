"""The GAN of Soons (2020), section 2: an implicit model trained adversarially, with no likelihood."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from pyromix.guides import EmptyGuide
from pyromix.models import GAN, DensityRatioEstimator

from ..data import Dataset
from ..infer.adversarial import AdversarialSteps, NonSaturatingGAN
from ..nn import glorot_init_, mlp
from ..schema import PROBABILITY, Argument, Options, validate
from .arguments import common_argument
from .registry import Recipe, register_recipe

__all__ = [
    "GAN_ARGUMENTS",
    "GAN_BETAS",
    "GAN_DEFAULTS",
    "adversarial_steps",
    "build_gan",
    "gan_optimizer",
    "standardize_gan",
]

# The GAN of Soons (2020) (2.3): z 32, G 128-256-512 with dropout 0.1, D 512-256 with dropout 0.3,
# leaky ReLU, Adam with betas (0.5, 0.999) for both, batch 128, 250 epochs, no early stopping
# (the generator's loss does not rank epochs); generations kept at ``sample_epochs`` and the last
# epoch; G ends in a sigmoid on images ([0, 1] pixels), otherwise in an affine map to the training
# data's mean and std. The learning rate is 1e-3, not the practical's 2e-4: that one is for
# MNIST's 469 steps per epoch, and on the digits' 10 it left G on one or two digit classes after
# 50 epochs in each of seeds 0-2 (1e-3: 8-10 classes; docs/benchmarks.md).
SOONS = "Soons (2020), 2.3"
GAN_ARGUMENTS = (
    common_argument(
        "likelihood", default="none", accepts=(Options("none"),), help="none: an implicit model"
    ),
    common_argument("binarize", default="none"),
    common_argument("latent_dim", default=32, reference=SOONS),
    common_argument("hidden", default=[128, 256, 512], help="the generator's hidden widths",
                    reference=SOONS),
    Argument("disc_hidden", list[int], [512, 256], "the discriminator's hidden widths", low=1,
             reference=SOONS),
    Argument("dropout", float, 0.1, "the generator's dropout", accepts=(PROBABILITY,),
             reference=SOONS),
    Argument("disc_dropout", float, 0.3, "the discriminator's dropout", accepts=(PROBABILITY,),
             reference=SOONS),
    common_argument("lr", default=1e-3, reference="the digits' 10 steps per epoch (the paper's "
                    "2e-4 is for MNIST's 469)"),
    common_argument("batch_size", default=128, reference=SOONS),
    common_argument("epochs", default=250, reference=SOONS),
    common_argument("patience", default=None, help="None: no early stopping (the generator's "
                    "loss does not rank epochs)"),
    Argument("sample_epochs", list[int], [1, 10], "epochs whose generations are kept (and the "
             "last)", low=1, reference=SOONS),
)
GAN_DEFAULTS: dict[str, Any] = {a.name: a.default for a in GAN_ARGUMENTS}
_NETWORKS = ("disc_hidden", "dropout", "disc_dropout")
GAN_BETAS = (0.5, 0.999)


def build_gan(args: dict) -> tuple[nn.Module, nn.Module]:
    """The GAN (generator and discriminator in one model) and its empty guide for ``args``."""
    validate({a.name: a for a in GAN_ARGUMENTS if a.name in _NETWORKS}, args)
    widths = args["disc_hidden"]
    leaky = lambda: nn.LeakyReLU(0.2)  # noqa: E731 - the practical's non-linearity
    d = args["latent_dim"]
    generator = mlp(d, args["hidden"], args["data_dim"], activation=leaky, dropout=args["dropout"])
    if args["image_shape"] is not None:
        generator = nn.Sequential(generator, nn.Sigmoid())
    discriminator = DensityRatioEstimator(
        args["data_dim"],
        widths,
        args["disc_dropout"],
        activation=partial(F.leaky_relu, negative_slope=0.2),
    )
    return GAN(glorot_init_(generator), discriminator, d, args["data_dim"]), EmptyGuide()


def standardize_gan(model: nn.Module, guide: nn.Module, data: Dataset, args: dict) -> None:
    """Non-image data: G's outputs on the training split's scale. A recipe's ``initialize``."""
    if args["image_shape"] is None:
        model.standardize(data.train.x)


def adversarial_steps(model: nn.Module, guide: nn.Module, data: Dataset, args: dict) -> list:
    """The discriminator's steps, one per generator step. A recipe's ``step_hooks``."""
    stages = [*args["sample_epochs"], args["epochs"]]
    steps = AdversarialSteps(
        model,
        batch_size=args["batch_size"],
        lr=args["lr"],
        betas=GAN_BETAS,
        sample_epochs=stages,
        seed=args["seed"],
    )
    return [steps]


def gan_optimizer(args: dict) -> Callable:
    """The generator's Adam with the practical's betas. A recipe's ``optimizer``."""
    return lambda parameters: torch.optim.Adam(parameters, lr=args["lr"], betas=GAN_BETAS)


register_recipe(
    "gan",
    Recipe(
        "GAN: x = G(z), z ~ N(0, I); non-saturating loss, D with dropout (Soons 2020, 2); no likelihood",
        build=build_gan,
        objective=lambda args: NonSaturatingGAN(),
        arguments=GAN_ARGUMENTS,
        kl_weighted=False,
        step_hooks=adversarial_steps,
        optimizer=gan_optimizer,
        restore_best=False,
        initialize=standardize_gan,
    ),
)
