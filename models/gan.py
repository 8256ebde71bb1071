"""The generative adversarial network as a Pyro program: an implicit model, no likelihood.

References:
    Goodfellow et al. (2014), Generative adversarial nets: the minimax game (eq. 1) and the
    non-saturating generator loss (3).
    Soons (2020), section 2 (2.1-2.5: the objective, the non-saturating loss, the MLP settings,
    generations at stages of training, mode collapse).
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from torch import nn
from torch.func import functional_call

from pyromix.evaluate import eval_mode
from pyromix.infer.adversarial import JUDGEMENT
from pyromix.local_params import LocalModule
from pyromix.sites import DATA_PLATE, Z

from .implicit import DensityRatioEstimator

__all__ = ["GAN"]


class GAN(LocalModule):
    r"""The generative story of a GAN (Soons 2020, 2)::

        z ~ N(0, I)
        x = G(z)          (an implicit model: x has no density, so there is no likelihood)

    and its discriminator ``D(x) = sigmoid(T(x))``, the classifier of real (label 1) against
    generated (label 0) points, a :class:`DensityRatioEstimator` on x: at its optimum
    ``T(x) = log p_data(x) / p_G(x)``, the density-ratio trick of the implicit prior. The
    program samples one z per point of the batch, records ``T(G(z))`` at the deterministic site
    ``"discriminator_logit"`` and returns G(z); it observes nothing.
    :class:`pyromix.infer.NonSaturatingGAN` trains G through ``T`` with T's parameters held
    constant, and :class:`pyromix.infer.AdversarialSteps` trains T.

    Arguments:
        generator: module mapping z to x (dropout in training, none in :meth:`generate`).
        discriminator: ``T``, mapping x to logits, with dropout in its own training steps.
        latent_dim: size of z.
        data_dim: size of x.

    Example:
        >>> from pyromix.nn import mlp
        >>> gan = GAN(mlp(2, [8], 4), DensityRatioEstimator(4, [8]), 2, 4)
        >>> gan.generate(3).shape
        torch.Size([3, 4])
    """

    def __init__(
        self, generator: nn.Module, discriminator: nn.Module, latent_dim: int, data_dim: int
    ) -> None:
        super().__init__()
        self.generator, self.discriminator, self.latent_dim = generator, discriminator, latent_dim
        self.register_buffer("loc", torch.zeros(latent_dim))
        self.register_buffer("scale", torch.ones(latent_dim))
        self.register_buffer("data_loc", torch.zeros(data_dim))
        self.register_buffer("data_scale", torch.ones(data_dim))

    @torch.no_grad()
    def standardize(self, x: torch.Tensor) -> None:
        """Non-image data: G's outputs are mapped to the mean and std of these points (train
        split), so G's first draws, of unit scale around 0, already span the data's modes;
        started below them all, G slides into the nearest one (mode collapse)."""
        self.data_loc.copy_(x.mean(0))
        self.data_scale.copy_(x.std(0).clamp(min=1e-6))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """x = G(z), on the data's scale."""
        return self.data_loc + self.data_scale * self.generator(z)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        with pyro.plate(DATA_PLATE, x.shape[0]):
            z = pyro.sample(Z, dist.Normal(self.loc, self.scale).to_event(1))
            fake = self.decode(z)
            pyro.deterministic(JUDGEMENT, self.discriminator_logits(fake))
        return fake

    def discriminator_logits(self, x: torch.Tensor) -> torch.Tensor:
        """``T(x)`` with T's parameters as constants: the generator's loss moves G, never T."""
        constants = {name: p.detach() for name, p in self.discriminator.named_parameters()}
        return functional_call(self.discriminator, constants, (x,))

    @torch.no_grad()
    def generate(self, n: int, *, mean: bool = True, component=None, weights=None) -> torch.Tensor:
        """``n`` draws ``G(z)``, z ~ N(0, I), without dropout; ``mean`` is ignored (x is a
        deterministic function of z), ``component`` and ``weights`` must be None."""
        if component is not None or weights is not None:
            raise ValueError("component/weights: a GAN is not a mixture; leave them None")
        z = dist.Normal(self.loc, self.scale).sample((n,))
        with eval_mode(self.generator):
            return self.decode(z)
