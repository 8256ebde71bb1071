"""Time one SVI step of pyromix's MVAE against the same step written in plain PyTorch.

Measures seconds per training step (zero_grad, loss and gradients, Adam step) of the ``mvae``
recipe (K = 10 clusters, soft optimisation: one candidate z_k ~ q(z|x,y_k) per cluster, q(y) in
closed form from them by Chowdhury et al.'s eq. 5 inside the guide, y enumerated by TraceEnum_ELBO;
MLP 64-256-256-10, Gaussian decoder) on a fixed batch of 100 digits as ``pyromix.train.fit``
runs it, and of the same objective (Chowdhury et al., eq. 1 with q(y) from eq. 5 held constant) in
PyTorch driving the very same modules and optimiser, so only the Pyro machinery differs. Both
are first checked to compute the same loss and gradients from the same noise.

Run:
    python benchmarks/mvae_step_time.py [--repeats 30] [--steps 50] [--threads N] [--json PATH]

Reading the ratio: as in ``vae_step_time.py``.
"""

from __future__ import annotations

import torch

# benchmarks/ is on sys.path when a script runs
from steptime import HALF_LOG_2PI, compare, gaussian_log_density, options

from pyromix.recipes import COMMON_DEFAULTS, MIXTURE_DEFAULTS, MVAE_DEFAULTS

CLUSTERS = 10


def reference_loss_and_grads(model, guide, x: torch.Tensor) -> float:
    """-sum_n sum_k q(y_k) [log p(x | z_k) + log p(y_k) + log p(z_k | y_k) - log q(z_k | x, y_k)
    - log q(y_k)], one reparameterised candidate z_k per cluster, q(y) by eq. 5 from them."""
    loc, scale = guide._heads(guide.body(x))  # (N, K, d)
    eps = torch.empty((1, *loc.shape)).normal_()  # one particle, as Normal.rsample draws it
    z = loc + scale * eps  # (1, N, K, d)
    log_q_z = gaussian_log_density(z, loc, scale)  # (1, N, K)
    likelihood = model.likelihood
    sigma = likelihood.log_scale.exp() + likelihood.std_min
    log_p_y = torch.log_softmax(model.logits, -1)
    with torch.no_grad():  # eq. 5, a constant of the objective, cluster by cluster as the guide
        log_p_x = torch.stack(
            [
                gaussian_log_density(x, likelihood.mean(z[..., j, :]), sigma)
                for j in range(CLUSTERS)
            ],
            -1,
        )
        log_p_z = gaussian_log_density(z, model.loc, model.scale)
        log_q_y = torch.log_softmax(log_p_x + log_p_y + log_p_z - log_q_z, -1)
    log_p_x = gaussian_log_density(x.unsqueeze(-2), likelihood.mean(z), sigma)
    log_p_z = gaussian_log_density(z, model.loc, model.scale)
    terms = log_p_x + log_p_y + log_p_z - log_q_z - log_q_y
    loss = -(log_q_y.exp() * terms).sum()
    loss.backward()
    return loss.item()


def main() -> None:
    args = {
        **COMMON_DEFAULTS,
        **MIXTURE_DEFAULTS,
        **MVAE_DEFAULTS,
        "clusters": CLUSTERS,
        "data_dim": 64,
        "image_shape": (8, 8),
    }
    compare("mvae", args, reference_loss_and_grads, options(__doc__.splitlines()[0]), K=CLUSTERS)


if __name__ == "__main__":
    main()
