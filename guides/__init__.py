"""Pyro guide programs: the amortised posteriors."""

from .gaussian import GaussianGuide

__all__ = ["GaussianGuide"]
