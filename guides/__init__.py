"""Pyro guide programs: the amortised posteriors."""

from .flow import EmptyGuide, IAFGuide, UniformDequantization
from .gated import GatedGuide
from .gaussian import GaussianGuide
from .hierarchical import HierarchicalGuide
from .mixture import ClusterEncoder, MixtureGuide
from .mvae import MVAEGuide, closed_form_log_q_y
from .semisupervised import SemiSupervisedGuide

__all__ = [
    "ClusterEncoder",
    "EmptyGuide",
    "GatedGuide",
    "GaussianGuide",
    "HierarchicalGuide",
    "IAFGuide",
    "MVAEGuide",
    "MixtureGuide",
    "SemiSupervisedGuide",
    "UniformDequantization",
    "closed_form_log_q_y",
]
