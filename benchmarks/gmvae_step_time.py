"""Time one SVI step of pyromix's GMVAE against the same step written in plain PyTorch.

Measures seconds per training step (zero_grad, loss and gradients, Adam step) of the ``gmvae``
recipe (K = 10 clusters, q(y|x) q(z|x,y) with y enumerated by TraceEnum_ELBO, MLP 64-256-256-10,
Bernoulli decoder) on a fixed batch of 100 binarised digits as ``pyromix.train.fit`` runs it, and
of the same objective (Li et al. 2020, eq. 5) in vectorised PyTorch driving the very same modules and
optimiser, so only the Pyro machinery differs. Both are first checked to compute the same loss
and gradients from the same noise.

Run:
    python benchmarks/gmvae_step_time.py [--repeats 30] [--steps 50] [--threads N] [--json PATH]

Reading the ratio: as in ``vae_step_time.py``, pyromix / reference is the median of the
per-repeat ratios of step times (1.0: Pyro adds nothing), the sides run in alternating blocks in
one process, and the IQR of the per-repeat ratios is its spread. Compare ratios, not absolute
times, across machines; ``--threads 1`` steadies a busy machine.
"""

from __future__ import annotations

import torch
from steptime import compare, options  # benchmarks/ is on sys.path when a script runs
from torch.nn import functional as F

from pyromix.recipes import COMMON_DEFAULTS, MIXTURE_DEFAULTS

CLUSTERS = 10


def reference_loss_and_grads(model, guide, x: torch.Tensor) -> float:
    """-sum_y q(y|x) E_q(z|x,y)[log p(x,y,z) - log q(y|x) - log q(z|x,y)] summed over the batch,
    one reparameterised z per cluster, all K at once; backpropagates and returns the loss."""
    h = guide.body(x)
    loc, scale = (t.transpose(0, 1) for t in guide._heads(h))  # (K, N, d), enumerated layout
    # eps in logical (K, N, d) order as Normal.rsample draws it; not *_like(loc), which would
    # follow the transposed strides and fill the same numbers in a different order.
    eps = torch.randn(loc.shape, dtype=loc.dtype, device=loc.device)
    z = loc + scale * eps
    log_qy = torch.log_softmax(guide.y_logits(h), -1).T  # (K, N)
    # Diagonal Gaussian log densities without their -d/2 log(2 pi), which cancel in p - q.
    log_qz = (-0.5 * eps**2 - scale.log()).sum(-1)
    prior_loc, prior_scale = model.loc.unsqueeze(1), model.scale.unsqueeze(1)  # (K, 1, d)
    log_pz = (-0.5 * ((z - prior_loc) / prior_scale) ** 2 - prior_scale.log()).sum(-1)
    log_py = torch.log_softmax(model.logits, -1).unsqueeze(-1)  # (K, 1)
    logits = model.likelihood.decoder(z)  # (K, N, D)
    bce = F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none")
    log_px = -bce.sum(-1)
    loss = -(log_qy.exp() * (log_px + log_py + log_pz - log_qy - log_qz)).sum()
    loss.backward()
    return loss.item()


def main() -> None:
    args = {
        **COMMON_DEFAULTS,
        **MIXTURE_DEFAULTS,
        "clusters": CLUSTERS,
        "likelihood": "bernoulli",
        "data_dim": 64,
        "image_shape": (8, 8),
    }
    compare("gmvae", args, reference_loss_and_grads, options(__doc__.splitlines()[0]), K=CLUSTERS)


if __name__ == "__main__":
    main()
