"""Where a ``fit`` epoch goes: optimiser steps, validation, checkpoint, everything else.

Trains the ``vae`` recipe on digits (MLP 64-256-256-10, batch 100) for ``--epochs`` epochs
through :func:`pyromix.runs.train_run` with a run directory (so a checkpoint is written as a user
run writes it) and the progress bar on, and times each part by wrapping the functions that do it:

- steps: the step (:class:`pyromix.capture.StepCapture`, eager or captured, and the first,
  checked ``loss_and_grads``), ``Optimizer.zero_grad`` and ``Optimizer.step``;
- validation: :func:`pyromix.train.evaluate_loss`;
- checkpoint: :func:`pyromix.train.save_checkpoint` and the state copies it is fed
  (:func:`pyromix.train.checkpoint.snapshot`, ``_snapshot`` in older checkouts);
- other: the rest of the wall time of ``train_run`` (batching, hooks, progress bar, bookkeeping).

Run:
    python benchmarks/epoch_breakdown.py [--epochs 50] [--threads 1] [--no-capture] [--json PATH]

Compare the shares and the seconds per epoch, not absolute times, across machines.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time
from collections import defaultdict

import torch
import torch._dynamo  # noqa: F401 - imported by the first optimiser step anyway (1-2 s, once per
# process); importing it here keeps that one-off cost out of the per-epoch parts

import pyromix.train as train
try:
    from pyromix.capture import StepCapture
except ImportError:  # a checkout from before captured steps
    StepCapture = None
from pyromix.recipes import RECIPES
from pyromix.runs import prepare_recipe, train_run

SPENT: dict[str, float] = defaultdict(float)
_RUNNING: set[str] = set()  # parts being timed: a call inside one is not counted again


def _timed(part: str, function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        if part in _RUNNING:
            return function(*args, **kwargs)
        _RUNNING.add(part)
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            SPENT[part] += time.perf_counter() - started
            _RUNNING.discard(part)

    return wrapper


def _instrument(objective_type: type) -> None:
    objective_type.loss_and_grads = _timed("steps", objective_type.loss_and_grads)
    if StepCapture is not None:
        StepCapture.__call__ = _timed("steps", StepCapture.__call__)
    torch.optim.Adam.step = _timed("steps", torch.optim.Adam.step)
    torch.optim.Adam.zero_grad = _timed("steps", torch.optim.Adam.zero_grad)
    # Where the loop looks each name up: the train package's modules, or the old train.py.
    places = [
        (getattr(train, "step", train), "evaluate_loss", "validation"),
        (getattr(train, "checkpointing", train), "save_checkpoint", "checkpoint"),
        (getattr(train, "loop", train), "snapshot" if hasattr(train, "loop") else "_snapshot",
         "checkpoint"),
    ]
    for module, name, part in places:
        if hasattr(module, name):
            setattr(module, name, _timed(part, getattr(module, name)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's default)")
    parser.add_argument("--json", metavar="PATH", help="also write the results to this file")
    parser.add_argument("--no-capture", action="store_true", help="every step eager (fit's old way)")
    opts = parser.parse_args()
    if opts.threads:
        torch.set_num_threads(opts.threads)
    run = prepare_recipe("vae", "digits", epochs=opts.epochs, patience=None)
    _instrument(type(RECIPES["vae"].objective(run.args)))
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as out:
        started, cpu = time.perf_counter(), time.process_time()
        options = {"capture_after": None} if opts.no_capture else {}
        history = train_run(run, out=out, **options).history
        total, cpu = time.perf_counter() - started, time.process_time() - cpu
    parts = {**SPENT, "other": total - sum(SPENT.values())}
    print(f"load average at start {load[0]:.2f}, at end {os.getloadavg()[0]:.2f}")
    per_epoch = total / opts.epochs * 1e3
    print(f"vae on digits, {opts.epochs} epochs, {total:.2f} s, {per_epoch:.1f} ms/epoch wall")
    print(f"  process CPU time {cpu:.2f} s, {cpu / opts.epochs * 1e3:.1f} ms/epoch")
    print(f"  capture: {getattr(history, 'capture', 'none in this checkout')}")
    for part, seconds in parts.items():
        print(f"  {part:<12}{seconds / opts.epochs * 1e3:>8.1f} ms/epoch {seconds / total:>7.1%}")
    if opts.json:
        results = {
            "command": " ".join(["python", *sys.argv]),
            "epochs": opts.epochs,
            "threads": torch.get_num_threads(),
            "load": [load[0], os.getloadavg()[0]],
            "seconds": total,
            "cpu_seconds": cpu,
            "parts": parts,
            "capture": getattr(history, "capture", None),
        }
        with open(opts.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
