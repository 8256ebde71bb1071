"""Time one SVI step of pyromix's VAE against the same step written in plain PyTorch.

Measures seconds per training step (zero_grad, loss and gradients, Adam step) of the ``vae``
recipe (MLP 64-256-256-10, Bernoulli decoder, analytic-KL ELBO) on a fixed batch of 100 binarised
digits as ``pyromix.train.fit`` runs it, and of the same step in plain PyTorch driving the very
same modules and optimiser, so only the Pyro machinery differs. Both are first checked to compute
the same loss and gradients from the same noise.

Run:
    python benchmarks/vae_step_time.py [--repeats 30] [--steps 50] [--threads N] [--json PATH]
        [--mnist-shaped] [--likelihood heteroscedastic]

``--likelihood heteroscedastic`` times the decoder that outputs a mean and a log-variance per
pixel against the same Gaussian log-density written by hand.

Reading the ratio: pyromix / reference is the median of the per-repeat ratios of step times;
1.0 means Pyro adds nothing, 1.5 means a pyromix step takes 50% longer. The sides run in
alternating blocks in one process so machine drift cancels; the interquartile range (IQR) of the
per-repeat ratios is its spread. Compare ratios, not absolute times, across machines. Torch's
thread count stays at its default unless ``--threads`` is given (1 steadies a busy machine).
"""

from __future__ import annotations

import torch
from steptime import (  # benchmarks/ is on sys.path when a script runs
    compare,
    gaussian_log_density,
    options,
)
from torch.nn import functional as F

from pyromix.recipes import COMMON_DEFAULTS


def reference_loss_and_grads(model, guide, x: torch.Tensor) -> float:
    """-ELBO summed over the batch (BCE + KL(N(loc, scale) || N(0, I))) through the same modules;
    backpropagates and returns the loss as a float, as ``ELBO.loss_and_grads`` does."""
    encoder = guide.encoder
    h = encoder.body(x)
    loc, scale = encoder.loc(h), F.softplus(encoder.raw_scale(h)) + encoder.std_min
    # eps drawn exactly as torch's Normal.rsample draws it (``_standard_normal``).
    z = loc + scale * torch.empty_like(loc).normal_()
    nll = F.binary_cross_entropy_with_logits(model.likelihood.decoder(z), x, reduction="sum")
    loss = nll + 0.5 * (scale**2 + loc**2 - 1 - 2 * scale.log()).sum()
    loss.backward()
    return loss.item()


def heteroscedastic_loss_and_grads(model, guide, x: torch.Tensor) -> float:
    """The same with the heteroscedastic Gaussian decoder: -log N(x; sigmoid(m), (exp(v / 2) +
    std_min)^2) with m and v the decoder's two halves."""
    encoder, likelihood = guide.encoder, model.likelihood
    h = encoder.body(x)
    loc, scale = encoder.loc(h), F.softplus(encoder.raw_scale(h)) + encoder.std_min
    z = loc + scale * torch.empty_like(loc).normal_()
    mean, log_var = likelihood.decoder(z).chunk(2, -1)
    std = torch.exp(0.5 * log_var) + likelihood.std_min
    nll = -gaussian_log_density(x, torch.sigmoid(mean), std).sum()
    loss = nll + 0.5 * (scale**2 + loc**2 - 1 - 2 * scale.log()).sum()
    loss.backward()
    return loss.item()


def main() -> None:
    opts = options(__doc__.splitlines()[0])
    args = {**COMMON_DEFAULTS, "data_dim": 64, "image_shape": (8, 8)}
    reference = reference_loss_and_grads
    if opts.likelihood == "heteroscedastic":
        args = {**args, "likelihood": "heteroscedastic", "sigmoid_mean": True}
        reference = heteroscedastic_loss_and_grads
    compare("vae", args, reference, opts, likelihood=opts.likelihood)


if __name__ == "__main__":
    main()
