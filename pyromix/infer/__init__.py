"""Objectives Pyro lacks, the latent-site scale handler, and training schedules."""

from .scale import LatentScaleMessenger, scale_latents
from .schedules import KLWarmup, StdAnnealing, TemperatureAnnealing, constant, weight_at
from .vimco import VIMCO

__all__ = [
    "LatentScaleMessenger",
    "scale_latents",
    "KLWarmup",
    "StdAnnealing",
    "TemperatureAnnealing",
    "constant",
    "weight_at",
    "VIMCO",
]
