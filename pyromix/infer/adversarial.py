"""Adversarial training of a GAN: the generator's objective and the discriminator's steps.

The discriminator's loss is the logistic loss of the density-ratio trick
(:func:`pyromix.infer.density_ratio_loss`, real data labelled 1, generations 0), the same code
that trains the implicit prior's T; only the samples differ.

References:
    Goodfellow et al. (2014), eq. 1 (the minimax value V(D, G)) and 3 (the non-saturating
    generator loss -log D(G(z))).
    Soons (2020), 2.1-2.3 (the objective, the saturation of log(1 - D(G(z))) early in training,
    the settings: Adam 2e-4, betas (0.5, 0.999), batch 128, dropout 0.3 in D).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from pyro import poutine
from pyro.infer import ELBO
from torch import nn
from torch.nn import functional as F

from .density_ratio import density_ratio_loss

JUDGEMENT = "discriminator_logit"  # pyromix.models.GAN's site of T(G(z))

__all__ = ["AdversarialSteps", "NonSaturatingGAN", "generator_loss"]


def generator_loss(logits_fake: torch.Tensor, *, saturating: bool = False) -> torch.Tensor:
    r"""The generator's loss per generated point, from the discriminator's logits ``T(G(z))``.

    Non-saturating (default): ``-log D(G(z)) = softplus(-T)``; saturating (the minimax game's
    own term): ``log(1 - D(G(z))) = -softplus(T)``, which is flat where D rejects G's points.

    Example:
        >>> t = torch.tensor([0.0])  # D = 1/2
        >>> float(generator_loss(t)), float(generator_loss(t, saturating=True))
        (0.6931471824645996, -0.6931471824645996)
    """
    return -F.softplus(logits_fake) if saturating else F.softplus(-logits_fake)


class NonSaturatingGAN(ELBO):
    r"""The generator's objective ``sum_i -log D(G(z_i))``, one z per point of the batch.

    Not a bound on anything: a GAN has no likelihood. The model is a program like
    :class:`pyromix.models.GAN` that records the discriminator's logits ``T(G(z))`` (with T's
    parameters constant) at the deterministic site ``"discriminator_logit"``; the guide is not
    used. Pyro's ``ELBO`` interface lets :func:`pyromix.train.fit` train the
    generator; :class:`AdversarialSteps` trains the discriminator between its steps.

    Arguments:
        saturating: use the minimax game's ``log(1 - D(G(z)))`` instead (Soons 2020, 2.2).
    """

    def __init__(self, saturating: bool = False) -> None:
        super().__init__(num_particles=1)
        self.saturating = saturating

    def _get_trace(self, model, guide, args, kwargs):
        raise NotImplementedError("NonSaturatingGAN scores generations, not traces")

    def differentiable_loss(self, model, guide, *args, **kwargs) -> torch.Tensor:
        trace = poutine.trace(model).get_trace(*args, **kwargs)
        logits = trace.nodes[JUDGEMENT]["value"]
        return generator_loss(logits, saturating=self.saturating).sum()

    def loss(self, model, guide, *args, **kwargs) -> float:
        with torch.no_grad():
            return float(self.differentiable_loss(model, guide, *args, **kwargs))

    def loss_and_grads(self, model, guide, *args, **kwargs) -> float:
        loss = self.differentiable_loss(model, guide, *args, **kwargs)
        loss.backward()
        return float(loss.detach())


class AdversarialSteps:
    r"""The discriminator's steps of a GAN, as a step hook of :func:`pyromix.train.fit`.

    After every generator step, one Adam step of the discriminator on the batch just trained on
    (real, label 1) against as many fresh generations (label 0), with dropout on: the
    alternation of Soons (2020), 2.3. Per epoch it records the mean discriminator loss, the mean
    generator loss per point, and D's accuracy (real above 1/2, fake below), and at the epochs
    in ``sample_epochs`` it keeps ``G(z)`` of a fixed z (the stages of the practical's Fig. 8).

    Arguments:
        model: a :class:`pyromix.models.GAN`.
        batch_size: the generator's batch size (to know when an epoch ends).
        lr, betas: the discriminator's Adam settings.
        sample_epochs: 1-based epochs at which to keep generations.
        num_samples: generations kept per stage.
        seed: seeds the fixed z.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        batch_size: int,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        sample_epochs: Sequence[int] = (1, 10),
        num_samples: int = 64,
        seed: int = 0,
    ) -> None:
        self.model, self.batch_size = model, batch_size
        self.optimizer = torch.optim.Adam(model.discriminator.parameters(), lr=lr, betas=betas)
        self.sample_epochs = sorted(set(sample_epochs))
        generator = torch.Generator().manual_seed(seed)
        self.noise = torch.randn(num_samples, model.latent_dim, generator=generator)
        self.curves: dict[str, list[float]] = {
            "discriminator_loss": [],
            "generator_loss": [],
            "discriminator_accuracy": [],
        }
        self.stages: dict[int, torch.Tensor] = {}
        self._sums = [0.0, 0.0, 0.0, 0]

    def parameters(self):
        """The parameters these steps train (the generator's objective leaves them alone)."""
        return self.model.discriminator.parameters()

    def __call__(self, state) -> None:
        real = state.batch.x
        with torch.no_grad():
            fake = self.model(real)
        logits = []  # T(real), T(fake) as the loss saw them, for the accuracy

        def ratio(x: torch.Tensor) -> torch.Tensor:
            logits.append(self.model.discriminator(x, dropout=True))
            return logits[-1]

        self.optimizer.zero_grad(set_to_none=True)
        loss = density_ratio_loss(ratio, real, fake)
        loss.backward()
        self.optimizer.step()
        correct = (logits[0] > 0).sum() + (logits[1] < 0).sum()
        sums = self._sums
        sums[0] += float(loss.detach()) * len(real)
        sums[1] += state.loss
        sums[2] += float(correct) / 2
        sums[3] += len(real)
        if state.step == math.ceil(state.num_data / self.batch_size) - 1:
            self._end_epoch(state.epoch + 1)

    def _end_epoch(self, epoch: int) -> None:
        loss, generator, correct, points = self._sums
        self.curves["discriminator_loss"].append(loss / points)
        self.curves["generator_loss"].append(generator / points)
        self.curves["discriminator_accuracy"].append(correct / points)
        self._sums = [0.0, 0.0, 0.0, 0]
        if epoch in self.sample_epochs:
            self.stages[epoch] = self.snapshot()

    @torch.no_grad()
    def snapshot(self) -> torch.Tensor:
        """G(z) at the fixed z, without dropout."""
        generator = self.model.generator
        mode = generator.training
        generator.eval()
        try:
            return self.model.decode(self.noise.to(self.model.loc.device)).cpu()
        finally:
            generator.train(mode)

    def report(self, out, image_shape: tuple[int, int] | None, title: str = "gan") -> list:
        """``stages.png`` (the kept generations, one row of 16 per stage; images only) and
        ``adversarial_curves.png`` (both losses and D's accuracy per epoch)."""
        from pyromix import plots

        out = Path(out)
        written = [
            plots.plot_curves(
                self.curves,
                out / "adversarial_curves.png",
                title=f"{title}: D loss, G loss (-log D(G(z))) per point, D accuracy",
            )
        ]
        if image_shape is not None and self.stages:
            epochs = sorted(self.stages)
            written.append(
                plots.plot_samples(
                    torch.cat([self.stages[e][:16] for e in epochs]),
                    out / "stages.png",
                    image_shape=image_shape,
                    row_labels=[f"epoch {e}" for e in epochs],
                    title=f"{title}: generations of one fixed z during training",
                )
            )
        return written

    def state_dict(self) -> dict[str, Any]:
        """Optimiser, curves and kept generations, for resumption and for the report."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "curves": {k: list(v) for k, v in self.curves.items()},
            "stages": dict(self.stages),
            "sums": list(self._sums),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.curves = {k: list(v) for k, v in state["curves"].items()}
        self.stages = dict(state["stages"])
        self._sums = list(state["sums"])
