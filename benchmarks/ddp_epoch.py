"""Two CPU processes (DDP, gloo) against one: epoch time and final loss of ``vae`` on digits.

Runs ``pyromix fit vae --data digits`` with the default settings for ``--epochs`` epochs, once in
one process and once with ``--devices 2 --strategy ddp``, alternating (``--repeats`` pairs), and
reports the median epoch time (fit's own per-epoch seconds, so process start-up and evaluation
are left out) and the final training and validation losses of each. On a 2-core machine both
processes share the cores, so the two-process run shows the engine's overhead, not a speed-up.

Run:
    python benchmarks/ddp_epoch.py [--epochs 20] [--repeats 1] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from pyromix.train import load_checkpoint

SIDES = {"1 process": [], "2 processes (ddp)": ["--devices", "2", "--strategy", "ddp"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", metavar="PATH")
    opts = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    results = {name: [] for name in SIDES}
    load = os.getloadavg()[0]
    for r in range(opts.repeats):
        for name in list(SIDES)[:: 1 if r % 2 == 0 else -1]:
            with tempfile.TemporaryDirectory() as out:
                command = [sys.executable, "-m", "pyromix.cli", "fit", "vae", "--data", "digits"]
                command += ["--epochs", str(opts.epochs), "--patience", str(opts.epochs)]
                command += ["--samples", "100", "--quiet", "--out", out, *SIDES[name]]
                subprocess.run(command, env=env, check=True, capture_output=True)
                history = load_checkpoint(Path(out) / "checkpoint.pt")["history"]
            results[name].append(
                {
                    "epoch_seconds": statistics.median(history["seconds"]),
                    "train_loss": history["train_loss"][-1],
                    "val_loss": history["val_loss"][-1],
                }
            )
    print(f"load average at start {load:.2f}, at end {os.getloadavg()[0]:.2f}")
    print(f"vae on digits, {opts.epochs} epochs, batch 100 (global), {opts.repeats} run(s) each")
    for name, runs in results.items():
        seconds = statistics.median(run["epoch_seconds"] for run in runs)
        train = statistics.median(run["train_loss"] for run in runs)
        val = statistics.median(run["val_loss"] for run in runs)
        print(f"  {name:<20} {1e3 * seconds:8.1f} ms/epoch   train {train:.3f}   val {val:.3f}")
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump({"epochs": opts.epochs, "load": load, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
