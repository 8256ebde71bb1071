"""Shared machinery of the step-time benchmarks: check, interleaved timing, report.

A benchmark script supplies a recipe, its arguments and a hand-written PyTorch
``reference(model, guide, x) -> float`` that computes the same loss and calls backward on the
same modules; this module checks both sides agree on the same noise, times them in alternating
blocks with one shared Adam optimiser, and prints (and optionally saves) the ratio.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from functools import partial
from typing import Callable

import pyro
import torch

from pyromix.data import load_dataset
from pyromix.infer.scale import LatentScaleMessenger
from pyromix.recipes import RECIPES
from pyromix.capture import StepCapture
from pyromix.train import training_step

BATCH, SEED = 100, 0
HALF_LOG_2PI = math.log(math.sqrt(2 * math.pi))


def gaussian_log_density(value, loc, scale) -> torch.Tensor:
    """log N(value; loc, diag scale^2), summed over the last dim: for hand-written references,
    in the arithmetic of torch's ``Normal.log_prob`` (multi-sample learning signals amplify any
    rounding difference)."""
    return (-((value - loc) ** 2) / (2 * scale**2) - scale.log() - HALF_LOG_2PI).sum(-1)


def options(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repeats", type=int, default=30, help="timed blocks per side")
    parser.add_argument("--steps", type=int, default=50, help="SVI steps per timed block")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's default)")
    parser.add_argument("--json", metavar="PATH", help="also write the results to this file")
    parser.add_argument(
        "--checked",
        dest="unchecked",
        action="store_false",
        help="time the step with Pyro's checks on (fit --validate-steps) instead of fit's default",
    )
    parser.add_argument(
        "--eager",
        action="store_true",
        help="time fit's eager step (fit --no-capture) instead of its captured one",
    )
    parser.add_argument(
        "--mnist-shaped",
        action="store_true",
        help="784-500-500-2000 networks on random binary 784-dim data instead of digits",
    )
    parser.add_argument(
        "--likelihood",
        choices=["bernoulli", "heteroscedastic"],
        default="bernoulli",
        help="the decoder's observation model (vae_step_time.py): heteroscedastic decodes a mean "
        "(sigmoid) and a log-variance per pixel",
    )
    return parser.parse_args()


# The networks of VaDE/DEC on MNIST (encoder 784-500-500-2000-z, decoder mirrored).
MNIST_SHAPED = {"data_dim": 784, "image_shape": (28, 28), "hidden": [500, 500, 2000]}


def check_same_computation(params: dict, sides: dict, x: torch.Tensor) -> None:
    """Exit non-zero unless both sides give the same loss and gradients under the same seed.

    Each side must make the same random draws in the same order (the guide's reparameterised
    noise; the model replays the guide and observes x); any other draw shows up as a mismatch.
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
    print(
        f"check: losses agree ({losses[0]:.4f} vs {losses[1]:.4f}); gradients of all "
        f"{len(params)} parameters agree (relative error < 1e-4)"
    )


def compare(recipe: str, args: dict, reference: Callable, opts: argparse.Namespace, **info) -> None:
    """Build ``recipe``, check it against ``reference``, time both and report the ratio."""
    if opts.threads:
        torch.set_num_threads(opts.threads)
    pyro.set_rng_seed(SEED)
    if opts.mnist_shaped:
        args = {**args, **MNIST_SHAPED}
        x = torch.bernoulli(torch.full((BATCH, 784), 0.3))
    else:
        x = load_dataset("digits", binarize="static").train.x[:BATCH]
    model, guide = RECIPES[recipe].build(args)
    weighting = LatentScaleMessenger(1.0)  # fit wraps model and guide in the KL weight; so do we
    # fit's step after the first: Pyro's checks off (--validate-steps keeps them on).
    checked = not opts.unchecked
    objective = RECIPES[recipe].objective(args)
    if checked or opts.eager:
        step = partial(
            training_step, objective, weighting(model), weighting(guide), validate=checked
        )
    else:  # fit's step once a structure has settled: the captured graph (pyromix.capture)
        step = StepCapture(
            objective, weighting(model), weighting(guide), modules=(model, guide), after=0
        )
    sides = {
        "pyromix": step,
        "reference": partial(reference, model, guide),
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
    machine = {
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch threads": threads,
        "torch": torch.__version__,
        "pyro": pyro.__version__,
    }
    print("machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()))
    info = {**info, "pyro checks": "on" if checked else "off"}
    if isinstance(step, StepCapture):
        if step.off:
            sys.exit(f"the step was not captured: {step.off}")
        info["step"] = f"captured ({step.seconds:.2f} s to capture and check)"
    else:
        info["step"] = "eager"
    setting = ", ".join(f"{k} {v}" for k, v in {"recipe": recipe, **info, "seed": SEED}.items())
    data = "random 784-dim data, 784-500-500-2000" if opts.mnist_shaped else "digits"
    print(f"{opts.repeats} repeats x {opts.steps} steps, batch {BATCH} of {data}, {setting}")
    print(f"  {'':<12}{'median ms/step':>16}")
    for name, seconds in times.items():
        print(f"  {name:<12}{1e3 * statistics.median(seconds):>16.3f}")
    print(f"ratio pyromix/reference: {ratio:.2f} (IQR {q1:.2f} to {q3:.2f})")
    if opts.json:
        results = {
            "command": " ".join(["python", *sys.argv]),
            "machine": machine,
            "seed": SEED,
            "batch": BATCH,
            "recipe": recipe,
            "data": data,
            "load_average": os.getloadavg(),
            **info,
            "repeats": opts.repeats,
            "steps": opts.steps,
            "seconds_per_step": times,
            "ratio_median": ratio,
            "ratio_iqr": [q1, q3],
        }
        with open(opts.json, "w") as f:
            json.dump(results, f, indent=2)
