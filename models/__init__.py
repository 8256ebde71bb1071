"""Pyro model programs: the generative stories."""

from .cpvae import ConditionalPriorVAE
from .flow import FlowDensity, FlowPrior
from .gan import GAN
from .hvae import HierarchicalVAE
from .implicit import DensityRatioEstimator, ImplicitPriorVAE
from .mixture import GaussianMixtureVAE
from .priors import MixtureOfGaussiansPrior, StandardNormalPrior, VampPrior
from .semisupervised import SemiSupervisedVAE
from .vae import VAE

__all__ = [
    "VAE",
    "GaussianMixtureVAE",
    "ConditionalPriorVAE",
    "StandardNormalPrior",
    "MixtureOfGaussiansPrior",
    "VampPrior",
    "ImplicitPriorVAE",
    "DensityRatioEstimator",
    "FlowDensity",
    "FlowPrior",
    "GAN",
    "HierarchicalVAE",
    "SemiSupervisedVAE",
]
