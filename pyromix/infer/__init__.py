"""Objectives Pyro lacks, the latent-site scale handler, and training schedules."""

from .scale import LatentScaleMessenger, scale_latents
from .schedules import KLWarmup, constant, weight_at

__all__ = ["LatentScaleMessenger", "scale_latents", "KLWarmup", "constant", "weight_at"]
