"""Pyro guide programs: the amortised posteriors."""

from .gated import GatedGuide
from .gaussian import GaussianGuide
from .mixture import ClusterEncoder, MixtureGuide
from .mvae import MVAEGuide

__all__ = ["ClusterEncoder", "GatedGuide", "GaussianGuide", "MVAEGuide", "MixtureGuide"]
