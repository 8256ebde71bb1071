"""Pyro guide programs: the amortised posteriors."""

from .gated import GatedGuide
from .gaussian import GaussianGuide
from .mixture import ClusterEncoder, MixtureGuide
from .mvae import MVAEGuide, closed_form_log_q_y

__all__ = [
    "ClusterEncoder",
    "GatedGuide",
    "GaussianGuide",
    "MVAEGuide",
    "MixtureGuide",
    "closed_form_log_q_y",
]
