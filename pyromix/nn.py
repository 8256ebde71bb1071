"""Networks: MLPs, the gated dense layer, small conv nets, and heads that return distributions.

Every network maps tensors with any leading batch shape (``(..., in_dim)``), so vectorised
particles (``(k, N, D)``) pass through unchanged.
"""

from __future__ import annotations

from typing import Sequence

import pyro.distributions as dist
import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "GatedDense",
    "mlp",
    "ConvEncoder",
    "ConvDecoder",
    "NormalHead",
    "positive",
    "glorot_init_",
    "glorot_means",
    "joint_input",
]


def positive(raw: torch.Tensor, minimum: float = 0.0) -> torch.Tensor:
    """Softplus with a lower bound: the std parametrisation of Li et al. (2020) (softplus(.) + eps)."""
    return F.softplus(raw) + minimum


class GatedDense(nn.Module):
    """Gated dense layer ``h(x) * sigmoid(g(x))`` (Dauphin et al. 2017).

    The element-wise non-linearity of CP-VAE (Lavda et al. 2020, 5), the VampPrior and the implicit-prior
    VAE (Takahashi et al. 2019, 5.2).

    Arguments:
        in_dim: input features.
        out_dim: output features.
        activation: optional non-linearity applied to ``h`` before gating.
    """

    def __init__(self, in_dim: int, out_dim: int, activation: nn.Module | None = None) -> None:
        super().__init__()
        self.h = nn.Linear(in_dim, out_dim)
        self.g = nn.Linear(in_dim, out_dim)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.h(x)
        if self.activation is not None:
            h = self.activation(h)
        return h * torch.sigmoid(self.g(x))


def mlp(
    in_dim: int,
    hidden: Sequence[int],
    out_dim: int | None = None,
    *,
    gated: bool = False,
    activation: type[nn.Module] = nn.ReLU,
    dropout: float = 0.0,
) -> nn.Sequential:
    """A multilayer perceptron.

    Arguments:
        in_dim: input features.
        hidden: widths of the hidden layers.
        out_dim: width of a final linear layer; ``None`` ends on the last hidden layer.
        gated: use :class:`GatedDense` hidden layers instead of ``Linear`` + ``activation``.
        activation: hidden non-linearity when not gated.
        dropout: dropout probability after each hidden layer (Takahashi et al. 2019 uses 0.5 in its
            density-ratio estimator).

    Returns:
        ``nn.Sequential`` with an ``out_features`` attribute.
    """
    layers: list[nn.Module] = []
    width = in_dim
    for h in hidden:
        layers += [GatedDense(width, h)] if gated else [nn.Linear(width, h), activation()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = h
    if out_dim is not None:
        layers.append(nn.Linear(width, out_dim))
        width = out_dim
    net = nn.Sequential(*layers)
    net.out_features = width
    return net


def _check_square(image_shape: Sequence[int]) -> tuple[int, int]:
    if len(image_shape) != 2 or any(s % 4 for s in image_shape):
        raise ValueError(
            f"image_shape: expected (H, W) with H and W divisible by 4, got {tuple(image_shape)}"
        )
    return int(image_shape[0]), int(image_shape[1])


class ConvEncoder(nn.Module):
    """Two stride-2 convolutions and a dense layer: ``(..., H*W) -> (..., out_dim)``.

    The CNN variant of the practical (Soons 2020, 1.12), for square grey-scale images.
    """

    def __init__(self, image_shape: Sequence[int], out_dim: int, channels: int = 32) -> None:
        super().__init__()
        self.image_shape = _check_square(image_shape)
        h, w = self.image_shape
        self.conv = nn.Sequential(
            nn.Conv2d(1, channels, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        self.dense = nn.Sequential(
            nn.Linear(2 * channels * (h // 4) * (w // 4), out_dim), nn.ReLU()
        )
        self.out_features = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[:-1]
        out = self.dense(self.conv(x.reshape(-1, 1, *self.image_shape)))
        return out.reshape(*batch, -1)


class ConvDecoder(nn.Module):
    """Mirror of :class:`ConvEncoder`: ``(..., in_dim) -> (..., C*H*W)`` (unconstrained outputs).

    ``out_channels`` C > 1 gives C maps per image, flattened one after the other (an observation
    model's mean, log-variance, ... per pixel)."""

    def __init__(
        self, in_dim: int, image_shape: Sequence[int], channels: int = 32, out_channels: int = 1
    ) -> None:
        super().__init__()
        self.image_shape = _check_square(image_shape)
        self.channels = channels
        h, w = self.image_shape
        self.dense = nn.Sequential(nn.Linear(in_dim, 2 * channels * (h // 4) * (w // 4)), nn.ReLU())
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(2 * channels, channels, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(channels, out_channels, 4, stride=2, padding=1),
        )
        self.out_features = out_channels * h * w

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        batch = z.shape[:-1]
        h, w = self.image_shape
        features = self.dense(z.reshape(-1, z.shape[-1]))
        out = self.deconv(features.reshape(-1, 2 * self.channels, h // 4, w // 4))
        return out.reshape(*batch, self.out_features)


class NormalHead(nn.Module):
    """``body`` features -> ``Independent(Normal(loc, softplus(raw) + std_min), 1)``.

    Arguments:
        body: network whose ``out_features`` attribute gives its output width.
        out_dim: event size of the Normal.
        std_min: lower bound on the std (Li et al. 2020's eps_z); an attribute a schedule may change.
    """

    def __init__(self, body: nn.Module, out_dim: int, std_min: float = 0.0) -> None:
        super().__init__()
        self.body = body
        self.loc = nn.Linear(body.out_features, out_dim)
        self.raw_scale = nn.Linear(body.out_features, out_dim)
        self.std_min = std_min

    def forward(self, x: torch.Tensor) -> dist.Independent:
        return self.head(self.body(x))

    def head(self, h: torch.Tensor) -> dist.Independent:
        """The Normal from ``body`` features ``h`` (a guide that also needs h calls body once)."""
        return dist.Normal(self.loc(h), positive(self.raw_scale(h), self.std_min)).to_event(1)


def glorot_init_(module: nn.Module) -> nn.Module:
    """Glorot-uniform weights and zero biases for every dense/conv layer (seeds 001, 004)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return module


def glorot_means(num_components: int, latent_dim: int) -> torch.Tensor:
    """Component means drawn like the weights of a Glorot-initialised layer on one-hot input.

    Lavda et al. (2020) initialises every layer by Glorot's method, the learned prior means included. The
    means start close together, so every component overlaps the encoder's first codes; means of
    unit scale in 40 dimensions instead put each point in a single component from the start, and
    then either one component takes every point (CP-VAE, ACC 0.117 on digits) or the mixture
    pays log K in the KL (MG, 2.4 nats worse than the VAE).
    """
    bound = (6.0 / (num_components + latent_dim)) ** 0.5
    return torch.empty(num_components, latent_dim).uniform_(-bound, bound)


def joint_input(*parts: torch.Tensor) -> torch.Tensor:
    """Concatenate along the last dimension, broadcasting leading (particle) dimensions.

    Example:
        >>> joint_input(torch.zeros(5, 3, 2), torch.ones(3, 4)).shape
        torch.Size([5, 3, 6])
    """
    batch = torch.broadcast_shapes(*(p.shape[:-1] for p in parts))
    return torch.cat([p.expand(*batch, p.shape[-1]) for p in parts], -1)
