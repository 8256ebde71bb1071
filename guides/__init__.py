"""Pyro guide programs: the amortised posteriors."""

from .gaussian import GaussianGuide
from .mixture import ClusterEncoder, MixtureGuide
from .mvae import MVAEGuide

__all__ = ["ClusterEncoder", "GaussianGuide", "MVAEGuide", "MixtureGuide"]
