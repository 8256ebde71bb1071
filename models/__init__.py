"""Pyro model programs: the generative stories."""

from .priors import StandardNormalPrior
from .vae import VAE

__all__ = ["VAE", "StandardNormalPrior"]
