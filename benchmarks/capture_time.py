"""Seconds to capture and check one training step, for every recipe (pyromix.capture).

For each recipe, built with its defaults on digits (batch 100), times ``StepCapture``'s capture
(recording the step with make_fx) and its check (the graph against an eager step on the next
batch), which fit pays once per structure; then the eager and the captured step (median of
``--steps``). The first capture in a process also imports part of torch's compiler: that
one-off is timed apart, on a throwaway capture before the table. Recipes whose objective has no
``differentiable_loss`` are listed as eager.

Run:
    python benchmarks/capture_time.py [--steps 20] [--threads 1] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import pyro
import torch

from pyromix.capture import StepCapture
from pyromix.recipes import RECIPES, get_recipe
from pyromix.runs import prepare_recipe


def build(name: str):
    run = prepare_recipe(name, "digits")  # untrained: no pretraining
    batches = run.dataset.train_batches(100, torch.Generator().manual_seed(0))
    xs = [next(batches)[0] for _ in range(2)]
    return run, get_recipe(name).objective(run.args), xs


def seconds_per_step(step, parameters, x, steps: int) -> float:
    times = []
    for _ in range(steps):
        for p in parameters:
            p.grad = None  # as fit's zero_grad
        started = time.perf_counter()
        step(x)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's default)")
    parser.add_argument("--json", metavar="PATH")
    opts = parser.parse_args()
    if opts.threads:
        torch.set_num_threads(opts.threads)
    pyro.set_rng_seed(0)
    run, objective, xs = build("vae")
    started = time.perf_counter()
    StepCapture(objective, run.model, run.guide, after=0)(xs[0])
    one_off = time.perf_counter() - started
    print(f"load average {os.getloadavg()[0]:.2f}; torch threads {torch.get_num_threads()}")
    print(f"first capture in the process (includes torch compiler imports): {one_off:.2f} s")
    print(f"{'recipe':<16}{'capture+check s':>16}{'eager ms':>10}{'captured ms':>12}")
    results = {"one_off_first_capture": one_off, "recipes": {}}
    for name in RECIPES:
        run, objective, xs = build(name)
        step = StepCapture(objective, run.model, run.guide, after=0)
        eager_step = lambda x: step._eager((x,), {})  # noqa: E731
        eager = seconds_per_step(eager_step, step.parameters, xs[0], opts.steps)
        for x in xs:  # capture on one batch, check on the other
            step(x)
        if step.off:
            print(f"{name:<16}{'eager: ' + step.off:>38}")
            results["recipes"][name] = {"off": step.off, "eager_ms": 1e3 * eager}
            continue
        captured = seconds_per_step(step, step.parameters, xs[1], opts.steps)
        print(f"{name:<16}{step.seconds:>16.3f}{1e3 * eager:>10.2f}{1e3 * captured:>12.2f}")
        results["recipes"][name] = {
            "capture_seconds": step.seconds,
            "eager_ms": 1e3 * eager,
            "captured_ms": 1e3 * captured,
        }
    if opts.json:
        results["command"] = " ".join(["python", *sys.argv])
        with open(opts.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
