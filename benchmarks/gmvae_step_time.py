"""Time one SVI step of pyromix's GMVAE against the same step written in plain PyTorch.

Measures seconds per training step (zero_grad, loss and gradients, Adam step) of the ``gmvae``
recipe (K = 10 clusters, q(y|x) q(z|x,y) with y enumerated by TraceEnum_ELBO, MLP 64-256-256-10,
Bernoulli decoder) on a fixed batch of 100 binarised digits as ``pyromix.train.fit`` runs it, and
of the same objective (seed 002, eq. 5) in vectorised PyTorch driving the very same modules and
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

import argparse
import json
import os
import platform
import statistics
import sys
import time
from functools import partial

import pyro
import torch
from torch.nn import functional as F

from pyromix.data import load_dataset
from pyromix.infer.scale import LatentScaleMessenger
from pyromix.recipes import COMMON_DEFAULTS, MIXTURE_DEFAULTS, RECIPES

BATCH, SEED, CLUSTERS = 100, 0, 10


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


def check_same_computation(params: dict, sides: dict, x: torch.Tensor) -> None:
    """Exit non-zero unless both sides give the same loss and gradients under the same seed.

    Each side makes one random draw, eps of shape (K, N, d) for z (Pyro's guide enumerates y and
    draws z once per cluster; the model replays y and z and observes x), so one seed gives both
    the same eps; any other draw would show up as a mismatch here.
    """
    losses, grads = [], []
    for loss_and_grads in sides.values():
        for p in params.values():
            p.grad = None
        pyro.set_rng_seed(SEED)
        losses.append(loss_and_grads(x))
        grads.append({name: p.grad.clone() for name, p in params.items()})
    if abs(losses[0] - losses[1]) > 1e-4 * abs(losses[1]):
        sys.exit(f"losses differ: pyromix {losses[0]:.6f} vs reference {losses[1]:.6f}")
    for name, ref in grads[1].items():
        err = ((grads[0][name] - ref).norm() / ref.norm().clamp_min(1e-12)).item()
        if err > 1e-4:
            sys.exit(f"gradients of {name} differ: relative error {err:.2e}")
    print(f"check: losses agree ({losses[0]:.4f} vs {losses[1]:.4f}); gradients of all "
          f"{len(params)} parameters agree (relative error < 1e-4)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="timed blocks per side")
    parser.add_argument("--steps", type=int, default=50, help="SVI steps per timed block")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's default)")
    parser.add_argument("--json", metavar="PATH", help="also write the results to this file")
    opts = parser.parse_args()
    if opts.threads:
        torch.set_num_threads(opts.threads)

    pyro.set_rng_seed(SEED)
    args = {**COMMON_DEFAULTS, **MIXTURE_DEFAULTS, "clusters": CLUSTERS, "likelihood": "bernoulli",
            "data_dim": 64, "image_shape": (8, 8)}
    model, guide = RECIPES["gmvae"].build(args)
    x = load_dataset("digits", binarize="static").train.x[:BATCH]
    weighting = LatentScaleMessenger(1.0)  # fit wraps model and guide in the KL weight; so do we
    sides = {
        "pyromix": partial(
            RECIPES["gmvae"].objective(args).loss_and_grads, weighting(model), weighting(guide)
        ),
        "reference": partial(reference_loss_and_grads, model, guide),
    }
    params = dict([*model.named_parameters("model"), *guide.named_parameters("guide")])
    check_same_computation(params, sides, x)
    # One optimiser for both sides, so neither side's timing depends on its own parameters' drift.
    optimizer = torch.optim.Adam(params.values(), lr=args["lr"])

    def seconds_per_step(loss_and_grads) -> float:  # each step is the body of fit's inner loop
        started = time.perf_counter()
        for _ in range(opts.steps):
            optimizer.zero_grad(set_to_none=True)
            loss_and_grads(x)
            optimizer.step()
        return (time.perf_counter() - started) / opts.steps

    for side in sides.values():  # warm-up
        seconds_per_step(side)
    times = {name: [] for name in sides}
    for r in range(opts.repeats):
        # A, B, B, A, ...: neither side always runs second, on caches the other has just warmed.
        for name in list(sides)[:: 1 if r % 2 == 0 else -1]:
            times[name].append(seconds_per_step(sides[name]))
    ratios = [p / r for p, r in zip(times["pyromix"], times["reference"])]
    q1, ratio, q3 = statistics.quantiles(ratios, n=4)

    threads = f"{torch.get_num_threads()} ({'--threads' if opts.threads else 'default'})"
    machine = {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
               "torch threads": threads, "torch": torch.__version__, "pyro": pyro.__version__}
    print("machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()))
    print(f"{opts.repeats} repeats x {opts.steps} steps, batch {BATCH} of digits, K {CLUSTERS}, "
          f"seed {SEED}")
    print(f"  {'':<12}{'median ms/step':>16}")
    for name, seconds in times.items():
        print(f"  {name:<12}{1e3 * statistics.median(seconds):>16.3f}")
    print(f"ratio pyromix/reference: {ratio:.2f} (IQR {q1:.2f} to {q3:.2f})")
    if opts.json:
        results = {"command": " ".join(["python", *sys.argv]), "machine": machine, "seed": SEED,
                   "batch": BATCH, "clusters": CLUSTERS, "repeats": opts.repeats,
                   "steps": opts.steps, "seconds_per_step": times, "ratio_median": ratio,
                   "ratio_iqr": [q1, q3]}
        with open(opts.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
