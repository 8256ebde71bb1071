"""Pyro model programs: the generative stories."""

from .mixture import GaussianMixtureVAE
from .priors import StandardNormalPrior
from .vae import VAE

__all__ = ["VAE", "GaussianMixtureVAE", "StandardNormalPrior"]
