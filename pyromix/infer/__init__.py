"""Objectives Pyro lacks, the latent-site scale handler, training schedules and step hooks."""

from .adversarial import AdversarialSteps, NonSaturatingGAN, generator_loss
from .captured import CapturedELBO
from .density_ratio import DensityRatioSteps, aggregated_posterior_sample, density_ratio_loss
from .scale import LatentScaleMessenger, prior_factor, scale_latents, unweighted
from .schedules import KLWarmup, StdAnnealing, TemperatureAnnealing, constant, weight_at
from .vimco import VIMCO, vimco_learning_signals

__all__ = [
    "LatentScaleMessenger",
    "scale_latents",
    "unweighted",
    "prior_factor",
    "KLWarmup",
    "StdAnnealing",
    "TemperatureAnnealing",
    "constant",
    "weight_at",
    "VIMCO",
    "CapturedELBO",
    "vimco_learning_signals",
    "DensityRatioSteps",
    "aggregated_posterior_sample",
    "density_ratio_loss",
    "AdversarialSteps",
    "NonSaturatingGAN",
    "generator_loss",
]
