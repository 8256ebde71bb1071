"""Checks before processes are launched or long work starts, so that a refusal comes once.

Several processes (``--devices 2``, ``--num-nodes``) are started by Lightning Fabric from the
command line itself: a setting refused after the launch is refused by every process, and a
machine waiting for partners that no launcher will start waits forever. Everything that can be
known from the settings, the run's arguments and its checkpoint is checked here, in the one
process the user started. :func:`check_evaluation_time` likewise estimates how long an
importance-sampled evaluation will take before it starts.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from .distributed import Devices

__all__ = [
    "LAUNCHER_ENVIRONMENTS",
    "MAX_EVALUATION_SECONDS",
    "check_launcher",
    "check_run_devices",
    "check_evaluation_time",
]

#: Variables by which a launcher tells a process its place among many machines, for torchrun
#: (and Kubeflow), SLURM, MPI and LSF, as Lightning Fabric's cluster environments read them.
LAUNCHER_ENVIRONMENTS = {
    "torchrun": ("RANK", "WORLD_SIZE", "MASTER_ADDR"),
    "SLURM": ("SLURM_NTASKS", "SLURM_PROCID"),
    "MPI": ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"),
    "LSF": ("LSB_JOBID", "JSM_NAMESPACE_RANK"),
}
#: Refuse an evaluation estimated to take longer than this (a day).
MAX_EVALUATION_SECONDS = 24 * 3600.0
# Estimates this long or longer are said on stderr before the evaluation starts.
NOTE_SECONDS = 3600.0


def check_launcher(devices: Devices, environ: dict[str, str] | None = None) -> None:
    """Refuse several machines (``num_nodes > 1``) when no launcher started this process.

    Without one, the first process waits forever for the others to join.

    Example:
        >>> check_launcher(Devices(num_nodes=2), environ={})
        Traceback (most recent call last):
        ...
        ValueError: num_nodes: 2 machines need a launcher that starts one process each and tells it its rank (torchrun --nnodes 2 ..., or srun under SLURM); none is in this process's environment (RANK/WORLD_SIZE/MASTER_ADDR, SLURM_NTASKS, OMPI_COMM_WORLD_SIZE or LSB_JOBID)
    """
    environ = os.environ if environ is None else environ
    if devices.num_nodes == 1:
        return
    if any(all(key in environ for key in keys) for keys in LAUNCHER_ENVIRONMENTS.values()):
        return
    raise ValueError(
        f"num_nodes: {devices.num_nodes} machines need a launcher that starts one process each "
        f"and tells it its rank (torchrun --nnodes {devices.num_nodes} ..., or srun under "
        "SLURM); none is in this process's environment (RANK/WORLD_SIZE/MASTER_ADDR, "
        "SLURM_NTASKS, OMPI_COMM_WORLD_SIZE or LSB_JOBID)"
    )


def check_run_devices(
    devices: Devices, args: dict[str, Any], checkpoint: str | os.PathLike | None
) -> None:
    """Refuse, before launching, what every process would refuse after it.

    - a global batch smaller than the number of processes (each needs a point);
    - resuming a checkpoint written by another number of processes (each restores its own
      random state), or at another precision (the steps would not be those of the run).

    A new run records its precision in ``args`` (``"precision"``); a run saved before this was
    recorded counts as 32-bit.

    Arguments:
        devices: the requested devices.
        args: the prepared run's arguments (``batch_size``; ``precision`` when resuming).
        checkpoint: the checkpoint being resumed, or None for a new run.
    """
    processes = devices.devices * devices.num_nodes
    if args["batch_size"] < processes:
        raise ValueError(
            f"batch_size: expected at least one point per process ({processes}), got "
            f"{args['batch_size']}"
        )
    if checkpoint is None or not Path(checkpoint).exists():
        args["precision"] = devices.precision
        return
    from .train import load_checkpoint

    recorded = args.get("precision", "32-true")
    if devices.precision != recorded:
        raise ValueError(
            f"resume: {str(checkpoint)!r} was trained at precision {recorded!r}; resume it with "
            f"--precision {recorded}, not {devices.precision!r} (or start over with --force)"
        )
    rng = load_checkpoint(checkpoint)["state"]["torch_rng"]
    written = len(rng) if isinstance(rng, list) else 1
    if written != processes:
        raise ValueError(
            f"resume: {str(checkpoint)!r} was written by {written} process(es); resume it with "
            f"the same number (--devices x --num-nodes), not {processes}"
        )


def check_evaluation_time(
    evaluate: Any, num_samples: int, *, probe_samples: int = 4, flag: str = "--samples"
) -> float:
    """Estimate how long ``evaluate(num_samples)`` takes from a timed ``evaluate(probe)``.

    Importance-sampled evaluation costs time in proportion to the samples per point, so a
    small probe times the whole (its random draws are undone; a probe that fails leaves the
    failure to the work itself). An estimate beyond an hour is said on stderr; one beyond
    :data:`MAX_EVALUATION_SECONDS` is refused.

    Arguments:
        evaluate: ``samples -> anything``, the evaluation to be run.
        num_samples: the samples per point requested.
        probe_samples: the samples per point of the timed probe.
        flag: the argument's name, for the messages.

    Returns:
        The estimated seconds.

    Raises:
        ValueError: the estimate is longer than :data:`MAX_EVALUATION_SECONDS`.
    """
    import sys

    import pyro.util

    if num_samples <= 16 * probe_samples:  # as cheap as the probe itself: not worth timing
        return 0.0
    state = pyro.util.get_rng_state()  # the probe draws nothing that the run will see
    started = time.perf_counter()
    try:
        evaluate(probe_samples)
    except Exception:  # noqa: BLE001 - e.g. an untrained model on bad data: fit will say
        return 0.0
    finally:
        pyro.util.set_rng_state(state)
    seconds = (time.perf_counter() - started) * num_samples / probe_samples
    if seconds > MAX_EVALUATION_SECONDS:
        most = int(num_samples * MAX_EVALUATION_SECONDS / seconds)
        raise ValueError(
            f"{flag}: {num_samples} importance samples per point would take about "
            f"{_duration(seconds)} here (timed on {probe_samples}); expected a request of at "
            f"most a day, about {most} samples"
        )
    if seconds >= NOTE_SECONDS:
        print(
            f"pyromix: note: {num_samples} importance samples per point will take about "
            f"{_duration(seconds)}",
            file=sys.stderr,
        )
    return seconds


def _duration(seconds: float) -> str:
    """Seconds in the largest unit that keeps the number above 1: ``"3.2 days"``."""
    for unit, size in (("days", 86400.0), ("hours", 3600.0), ("minutes", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} seconds"
