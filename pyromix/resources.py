"""Memory a configuration needs, estimated before any allocation, against what the machine has.

The estimate is a lower bound from the sizes alone (layer widths, latent size, batch, vectorised
particles, clusters): a configuration it refuses cannot run, whatever the model's details.
"""

from __future__ import annotations

import os
from typing import Any

import torch

__all__ = ["machine_memory", "training_bytes", "check_training_fits", "check_fits", "format_bytes"]

FLOAT_BYTES = 4
# Every weight is held as the parameter, its gradient, Adam's two moments, and the last-good and
# best-epoch copies that fit keeps.
COPIES_PER_WEIGHT = 6


def machine_memory(device: str | torch.device = "cpu") -> int:
    """Bytes of memory of ``device``: physical RAM for the CPU, the card's memory for CUDA."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def format_bytes(n: float) -> str:
    """``n`` bytes in the largest unit that keeps the number >= 1 (decimal units).

    Example:
        >>> format_bytes(3.2e12)
        '3.2 TB'
    """
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def training_bytes(
    args: dict[str, Any], objective: Any = None, points: int | None = None
) -> dict[str, int]:
    """A lower bound on the memory training with ``args`` needs, by what drives it.

    Arguments:
        args: a recipe's resolved arguments (``data_dim``, ``hidden``, ``latent_dim``,
            ``batch_size``, ``particles``; ``clusters``/``components`` where present).
        objective: the run's ELBO; its particles multiply activations only when vectorised
            (``vectorize_particles``), as one sequential particle at a time is held otherwise.
        points: training points; a batch holds at most this many.

    Returns:
        ``{"weights": bytes, "activations": bytes}``: the encoder and decoder MLPs' weights
        (D -> hidden -> latent and back) times ``COPIES_PER_WEIGHT`` plus the mixture's
        per-cluster parameters; and one forward pass's layer outputs for a batch.
    """
    widths = [args["data_dim"], *args["hidden"], args["latent_dim"]]
    dense = sum(a * b + b for a, b in zip(widths, widths[1:]))
    per_cluster = 2 * args["latent_dim"]
    clusters = sum(int(args.get(key) or 0) for key in ("clusters", "components"))
    weights = (2 * dense + clusters * per_cluster) * COPIES_PER_WEIGHT * FLOAT_BYTES
    vectorised = bool(getattr(objective, "vectorize_particles", False))
    batch = min(args["batch_size"], points or args["batch_size"])
    copies = batch * (args["particles"] if vectorised else 1)
    activations = 2 * sum(widths) * copies * FLOAT_BYTES
    return {"weights": weights, "activations": activations}


def check_fits(needed: int, what: str, device: str | torch.device = "cpu", why: str = "") -> None:
    """Refuse with a ValueError naming ``what`` when ``needed`` bytes exceed the device's memory.

    Example:
        >>> check_fits(10**30, "n")
        Traceback (most recent call last):
        ...
        ValueError: n: needs at least 1e+15 PB of memory, more than this machine's ...
    """
    available = machine_memory(device)
    if needed > available:
        raise ValueError(
            f"{what}: needs at least {format_bytes(needed)} of memory{why}, more than this "
            f"machine's {format_bytes(available)}"
        )


def check_training_fits(
    args: dict[str, Any], objective: Any = None, points: int | None = None
) -> None:
    """Refuse a configuration whose :func:`training_bytes` exceed the memory of its device.

    The message names the arguments behind the larger part: sizes of the networks for weights,
    batch and particles for activations.
    """
    need = training_bytes(args, objective, points)
    part = max(need, key=need.get)
    drivers = {
        "weights": "hidden/latent_dim/clusters",
        "activations": "batch_size/particles/hidden",
    }[part]
    device = args.get("device", "cpu")
    check_fits(sum(need.values()), drivers, device, f" (mostly for {part})")
