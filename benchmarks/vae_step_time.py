"""Time one SVI step of pyromix's VAE against the same step written in plain PyTorch.

Measures seconds per training step (zero_grad, loss and gradients, Adam step) of the ``vae``
recipe (MLP 64-256-256-10, Bernoulli decoder, analytic-KL ELBO) on a fixed batch of 100 binarised
digits as ``pyromix.train.fit`` runs it, and of the same step in plain PyTorch driving the very
same modules and optimiser, so only the Pyro machinery differs. Both are first checked to compute
the same loss and gradients from the same noise.

Run:
    python benchmarks/vae_step_time.py [--repeats 30] [--steps 50] [--threads N] [--json PATH]

Reading the ratio: pyromix / reference is the median of the per-repeat ratios of step times;
1.0 means Pyro adds nothing, 1.5 means a pyromix step takes 50% longer. The sides run in
alternating blocks in one process so machine drift cancels; the interquartile range (IQR) of the
per-repeat ratios is its spread. Compare ratios, not absolute times, across machines. Torch's
thread count stays at its default unless ``--threads`` is given (1 steadies a busy machine).
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
from pyromix.recipes import COMMON_DEFAULTS, RECIPES

BATCH, SEED = 100, 0


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


def check_same_computation(params: dict, sides: dict, x: torch.Tensor) -> None:
    """Exit non-zero unless both sides give the same loss and gradients under the same seed.

    Each side makes one random draw, eps for z (Pyro's model replays z from the guide and observes
    x), so one seed gives both the same eps; any other draw would show up as a mismatch here.
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
    args = {**COMMON_DEFAULTS, "data_dim": 64, "image_shape": (8, 8)}
    model, guide = RECIPES["vae"].build(args)
    x = load_dataset("digits", binarize="static").train.x[:BATCH]
    weighting = LatentScaleMessenger(1.0)  # fit wraps model and guide in the KL weight; so do we
    sides = {
        "pyromix": partial(
            RECIPES["vae"].objective(args).loss_and_grads, weighting(model), weighting(guide)
        ),
        "reference": partial(reference_loss_and_grads, model, guide),
    }
    params = dict([*model.named_parameters("model"), *guide.named_parameters("guide")])
    check_same_computation(params, sides, x)
    # One optimiser for both sides: they train the same parameters, so neither side's timing
    # depends on its copy of the network having drifted from the other's.
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
    print(f"{opts.repeats} repeats x {opts.steps} steps, batch {BATCH} of digits, seed {SEED}")
    print(f"  {'':<12}{'median ms/step':>16}")
    for name, seconds in times.items():
        print(f"  {name:<12}{1e3 * statistics.median(seconds):>16.3f}")
    print(f"ratio pyromix/reference: {ratio:.2f} (IQR {q1:.2f} to {q3:.2f})")
    if opts.json:
        results = {"command": " ".join(["python", *sys.argv]), "machine": machine, "seed": SEED,
                   "batch": BATCH, "repeats": opts.repeats, "steps": opts.steps,
                   "seconds_per_step": times, "ratio_median": ratio, "ratio_iqr": [q1, q3]}
        with open(opts.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
