"""Pyro guide programs: the amortised posteriors."""

from .gated import GatedGuide
from .gaussian import GaussianGuide
from .mixture import MixtureGuide

__all__ = ["GaussianGuide", "MixtureGuide", "GatedGuide"]
