"""Time one SVI step of pyromix's NVISA against the same step written in plain PyTorch.

Measures seconds per training step (zero_grad, loss and gradients, Adam step) of the ``nvisa``
recipe (K = 10 clusters, y sampled from q(y|x), z from q(z|x,y), M = 15 particles per point, the
VIMCO estimator, MLP 64-256-256-10, Gaussian decoder) on a fixed batch of 100 digits as
``pyromix.train.fit`` runs it, and of the same objective (Li et al. 2020, eq. 7, with VIMCO's
leave-one-out learning signals) in vectorised PyTorch driving the very same modules and
optimiser, so only the Pyro machinery differs. Both are first checked to compute the same loss
and gradients from the same noise.

Run:
    python benchmarks/nvisa_step_time.py [--repeats 30] [--steps 50] [--threads N] [--json PATH]

Reading the ratio: as in ``vae_step_time.py``, pyromix / reference is the median of the
per-repeat ratios of step times (1.0: Pyro adds nothing), the sides run in alternating blocks in
one process, and the IQR of the per-repeat ratios is its spread.
"""

from __future__ import annotations

import math

import torch

# benchmarks/ is on sys.path when a script runs
from steptime import HALF_LOG_2PI, compare, gaussian_log_density, options

from pyromix.infer.vimco import vimco_learning_signals
from pyromix.recipes import COMMON_DEFAULTS, MIXTURE_DEFAULTS

CLUSTERS, PARTICLES = 10, 15


def reference_loss_and_grads(model, guide, x: torch.Tensor) -> float:
    """-sum_n [log (1/M) sum_m w_m] with w_m = p(x, y_m, z_m) / q(y_m, z_m | x), y_m sampled and
    z_m reparameterised; the score of q(y_m | x) is weighted by VIMCO's learning signal."""
    n, k = x.shape[0], CLUSTERS
    h = guide.body(x)
    loc_all, scale_all = guide._heads(h)  # (N, K, d)
    logits = guide.y_logits(h)
    log_q_all = logits - logits.logsumexp(-1, keepdim=True)  # as torch's Categorical holds them
    # y_m ~ q(y | x) as Categorical.sample draws it: one multinomial over the (M * N) rows
    probs = torch.softmax(log_q_all.detach(), -1).expand(PARTICLES, n, k)
    y = torch.multinomial(probs.reshape(-1, k), 1, True).reshape(PARTICLES, n)
    points = torch.arange(n)
    loc, scale = loc_all[points, y], scale_all[points, y]  # (M, N, d)
    eps = torch.empty(loc.shape).normal_()  # as Normal.rsample draws it
    z = loc + scale * eps
    log_q_y = log_q_all[points, y]
    log_q_z = gaussian_log_density(z, loc, scale)
    log_p_y = torch.log_softmax(model.logits, -1)[y]
    log_p_z = gaussian_log_density(z, model.loc[y], model.scale[y])
    likelihood = model.likelihood
    sigma = likelihood.log_scale.exp() + likelihood.std_min
    log_p_x = gaussian_log_density(x, likelihood.mean(z), sigma)
    log_w = log_p_y + log_p_z + log_p_x - log_q_y - log_q_z  # (M, N)
    bound = (torch.logsumexp(log_w, 0) - math.log(PARTICLES)).sum()
    score = (vimco_learning_signals(log_w.detach()) * log_q_y).sum()
    loss = -(bound + (score - score.detach()))
    loss.backward()
    return loss.item()


def main() -> None:
    args = {
        **COMMON_DEFAULTS,
        **MIXTURE_DEFAULTS,
        "clusters": CLUSTERS,
        "particles": PARTICLES,
        "prior_std_min": 1.0,  # the recipe's default (Li et al. 2020)
        "data_dim": 64,
        "image_shape": (8, 8),
    }
    opts = options(__doc__.splitlines()[0])
    compare("nvisa", args, reference_loss_and_grads, opts, K=CLUSTERS, M=PARTICLES)


if __name__ == "__main__":
    main()
