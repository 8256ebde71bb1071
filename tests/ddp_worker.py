"""Run by tests/test_distributed.py as two CPU processes (gloo): one step of the ``vae`` recipe
on one global batch, split over the ranks, with the noise each rank would have drawn in one
process, so the summed gradients must equal the one-process gradients exactly (to float
rounding). Rank 0 writes what it found to the JSON file named on the command line.

Run:
    python tests/ddp_worker.py OUT.json
"""

import json
import sys

import pyro
import torch
from pyro.infer import TraceMeanField_ELBO

from pyromix.data import load_dataset
from pyromix.distributed import Devices
from pyromix.recipes import COMMON_DEFAULTS, RECIPES

# CPU normal_ turns uniforms into normals in blocks of 16: shards of whole blocks keep the
# one-process stream (10 points x 8 dims = 80 draws per rank).
SEED, BATCH, LATENT = 3, 20, 8


def build():
    args = {**COMMON_DEFAULTS, "hidden": [16], "latent_dim": LATENT, "data_dim": 64}
    torch.manual_seed(0)
    return RECIPES["vae"].build({**args, "image_shape": (8, 8)})


def gradients(model, guide, x, skip):
    """Loss and gradients of one step on ``x``, after discarding ``skip`` standard normals: the
    guide's only draw is an (N, LATENT) block, so rank r sees the rows one process draws for it."""
    for p in [*model.parameters(), *guide.parameters()]:
        p.grad = None
    torch.manual_seed(SEED)
    torch.randn(skip)
    loss = TraceMeanField_ELBO().loss_and_grads(model, guide, x)
    return loss, [p.grad.clone() for p in [*model.parameters(), *guide.parameters()]]


def main() -> None:
    torch.set_num_threads(1)
    replicas = Devices(devices=2, strategy="ddp").start()
    x = load_dataset("digits", binarize="static", limit=BATCH).train.x[:BATCH]
    model, guide = build()
    params = [*model.parameters(), *guide.parameters()]
    lo = len(x) * replicas.rank // replicas.world_size
    loss, _ = gradients(model, guide, replicas.shard(x), lo * LATENT)
    loss = replicas.reduce_gradients(params, loss)
    summed = [p.grad.clone() for p in params]
    states = replicas.gather_rng()
    if not replicas.is_zero:
        return
    pyro.clear_param_store()
    one_loss, one_grads = gradients(model, guide, x, 0)
    errors = [
        ((a - b).norm() / b.norm().clamp_min(1e-12)).item()
        for a, b in zip(summed, one_grads)
    ]
    with open(sys.argv[1], "w") as f:
        json.dump(
            {
                "world_size": replicas.world_size,
                "loss": loss,
                "one_process_loss": one_loss,
                "max_relative_gradient_error": max(errors),
                "rng_states_differ": not torch.equal(states[0], states[1]),
            },
            f,
        )


if __name__ == "__main__":
    main()
