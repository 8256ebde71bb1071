"""Devices and processes for :func:`pyromix.train.fit`: one device, or many through Fabric.

A :class:`Devices` is the plain-data request (``--accelerator``, ``--devices``, ``--strategy``,
``--num-nodes``, ``--precision``); :meth:`Devices.start` returns the :class:`Replicas` that fit
trains with. One process on one device needs no engine; several processes (DDP, one or many
machines) and mixed precision come from Lightning Fabric, which launches the processes, sets up
the process group and provides the collectives.

Why pyromix reduces gradients itself instead of wrapping modules in ``DistributedDataParallel``:
a Pyro objective calls the model and the guide separately, several networks are shared between
them (the VampPrior's encoder) or trained outside them (the implicit prior's discriminator, the
autoencoder pretraining), and DDP's wrapper can only synchronise what runs through its own
``forward``. Summing the flattened gradients of every trained parameter in one ``all_reduce``
after each step serves every recipe alike. Pyro's losses are sums over the batch, so the sum over
ranks is the gradient of the whole global batch, the same as one process computes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import typing
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import pyro
import torch

from .data import Split
from .schema import Interval, Options, check_value

__all__ = [
    "ACCELERATORS",
    "PRECISIONS",
    "STRATEGIES",
    "Devices",
    "Replicas",
    "ProcessLost",
    "launched_worker",
]

ACCELERATORS = ("cpu", "cuda", "auto")
STRATEGIES = ("auto", "ddp")
# 16-mixed needs a gradient scaler around the backward pass, which Pyro's ELBOs run themselves.
PRECISIONS = ("32-true", "bf16-mixed")


@dataclass(frozen=True)
class Devices:
    """Where and how many processes train: the engine's settings as plain data.

    Attributes:
        accelerator: ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when available).
        devices: devices per machine, one process each.
        strategy: ``"auto"`` (one process per device; DDP when there are several) or ``"ddp"``.
        num_nodes: machines taking part (launched by ``torchrun`` or SLURM, one command each).
        precision: ``"32-true"`` or ``"bf16-mixed"`` (bfloat16 autocast of the forward pass).
        index: the CUDA device of a single-process run (``device="cuda:1"``), else None.

    Example:
        >>> Devices.parse("cuda:1" if torch.cuda.device_count() > 1 else "cpu").devices
        1
        >>> Devices(devices=2, strategy="ddp").distributed
        True
    """

    accelerator: str = "cpu"
    devices: int = 1
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"
    index: int | None = None

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("accelerator", self.accelerator, ACCELERATORS),
            ("strategy", self.strategy, STRATEGIES),
            ("precision", self.precision, PRECISIONS),
        ):
            check_value(name, value, Options(*allowed))
        for name in ("devices", "num_nodes"):
            check_value(name, getattr(self, name), Interval(int, 1))
        if self.accelerator == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                "accelerator: 'cuda' was requested but torch.cuda.is_available() is False"
            )
        if self.index is not None and (self.distributed or self.accelerator != "cuda"):
            raise ValueError("device: an index (cuda:N) picks the device of one CUDA process only")

    @classmethod
    def parse(cls, device: str | torch.device) -> "Devices":
        """``"cpu"``, ``"cuda"`` or ``"cuda:N"``, the single-device shorthand ``--device``."""
        try:
            device = torch.device(device)
        except (RuntimeError, TypeError) as e:
            raise ValueError(f"device: expected 'cpu' or 'cuda[:N]', got {device!r}") from e
        if device.type not in ("cpu", "cuda"):
            raise ValueError(f"device: expected 'cpu' or 'cuda[:N]', got {str(device)!r}")
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device: 'cuda' was requested but torch.cuda.is_available() is False")
        return cls(device.type, index=device.index if device.type == "cuda" else None)

    @property
    def device_name(self) -> str:
        """``"cpu"``, ``"cuda"`` or ``"cuda:N"``: the kind of device every process uses."""
        kind = self.accelerator
        if kind == "auto":
            kind = "cuda" if torch.cuda.is_available() else "cpu"
        return kind if self.index is None else f"{kind}:{self.index}"

    @property
    def distributed(self) -> bool:
        """Whether training runs in several processes (or asks for DDP explicitly)."""
        return self.devices * self.num_nodes > 1 or self.strategy == "ddp"

    def start(self) -> "Replicas":
        """Launch the processes (a no-op for one local process) and return this one's handle.

        With several processes on one machine, Fabric starts the others by re-running this
        process's command line; under ``torchrun`` or SLURM it joins the processes they started.
        """
        if not self.distributed and self.precision == "32-true":
            return Replicas(torch.device(self.device_name))
        try:
            from lightning_fabric import Fabric
        except ImportError as e:  # a dependency; missing only in an environment set up by hand
            raise ValueError(
                "devices: several processes and mixed precision need lightning-fabric "
                "(pip install lightning-fabric)"
            ) from e
        # Lightning's start-up banner is noise on a command's stderr, where a failure is one line.
        logging.getLogger("lightning_fabric").setLevel(logging.WARNING)
        fabric = Fabric(
            accelerator=self.accelerator,
            devices=[self.index] if self.index is not None else self.devices,
            strategy=self.strategy,
            num_nodes=self.num_nodes,
            precision=self.precision,
        )
        fabric.launch()
        return Replicas(fabric.device, fabric)


def launched_worker() -> bool:
    """Whether a launcher started this process as a rank other than 0, before the launch.

    Fabric's own launcher re-runs the command with ``LOCAL_RANK`` (and ``NODE_RANK``) set,
    ``torchrun`` sets ``RANK``, SLURM sets ``SLURM_PROCID``. Such a process must not take the
    run directory's lock or write in it: rank 0 does.

    Example:
        >>> launched_worker()  # a process started by hand
        False
    """
    env = os.environ
    for key in ("RANK", "SLURM_PROCID"):
        if key in env:
            return int(env[key]) != 0
    return int(env.get("LOCAL_RANK", 0)) != 0 or int(env.get("NODE_RANK", 0)) != 0


class ProcessLost(RuntimeError):
    """Another process of a multi-process run ended, so a collective operation failed."""


# How long a collective's failure may precede the exit of the process that caused it.
_REAP_SECONDS = 3.0


class Replicas:
    """This process's share of a run: its device, rank, data shard and the collectives.

    With one process every method is the identity; with several, each rank takes a contiguous
    slice of every global batch and of the validation split, and :meth:`reduce_gradients` makes
    every rank's gradients (and loss) those of the whole global batch.

    Arguments:
        device: this process's device.
        fabric: the launched Fabric of a multi-process or mixed-precision run, else None.
    """

    def __init__(self, device: torch.device, fabric: Any = None) -> None:
        self.device, self.fabric = device, fabric
        self.rank = fabric.global_rank if fabric is not None else 0
        self.world_size = fabric.world_size if fabric is not None else 1

    @property
    def is_zero(self) -> bool:
        """Whether this process writes files and shows progress (rank 0)."""
        return self.rank == 0

    def seed(self, seed: int) -> None:
        """Seed Pyro/torch: ``seed`` on rank 0, so one process draws what it always drew, and
        ``seed + rank`` elsewhere, so ranks draw independent noise for their points."""
        pyro.set_rng_seed(seed + self.rank)

    def autocast(self) -> typing.ContextManager[None]:
        """The precision's autocast context around a forward pass (none at 32-true)."""
        return self.fabric.autocast() if self.fabric is not None else contextlib.nullcontext()

    def shard(self, batch: Any) -> Any:
        """This rank's contiguous rows of a global batch: a tensor, or a tuple of tensors (or
        None) such as :class:`pyromix.labels.Batch`. Sizes differ by at most one row."""
        if self.world_size == 1:
            return batch
        if isinstance(batch, torch.Tensor):
            lo, hi = (len(batch) * r // self.world_size for r in (self.rank, self.rank + 1))
            return batch[lo:hi]
        return type(batch)(*(None if t is None else self.shard(t) for t in batch))

    def shard_split(self, split: Split) -> Split:
        """This rank's rows of ``split`` (data, labels and the revealed-label mask)."""
        if self.world_size == 1:
            return split
        parts = (split.x, split.y, split.labeled)
        return Split(*(None if t is None else self.shard(t) for t in parts))

    def sum(self, value: float) -> float:
        """``value`` summed over ranks."""
        if self.world_size == 1:
            return value
        total = torch.tensor([value], dtype=torch.float64, device=self.device)
        with self._collective():
            torch.distributed.all_reduce(total)
        return float(total[0])

    def reduce_gradients(
        self, parameters: Sequence[torch.nn.Parameter], loss: float, mean: bool = False
    ) -> float:
        """Sum (or with ``mean``, average) every gradient and the loss over ranks, in one
        ``all_reduce``.

        Sum for losses that add up over points (each rank's is its slice's share); mean for
        losses that each estimate the whole objective (a model scaling its plate by
        :func:`pyromix.train.data_size`, which keeps a global site's prior once). A parameter
        without a gradient on some rank counts as a zero gradient there. Returns the reduced
        loss, the same on every rank, so that every rank stops together on a NaN.
        """
        if self.world_size == 1:
            return loss
        flat = torch.cat(
            [
                (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).float()
                for p in parameters
            ]
            + [torch.tensor([loss], dtype=torch.float32, device=self.device)]
        )
        with self._collective():
            torch.distributed.all_reduce(flat)  # a sum, in the group Fabric set up
        if mean:
            flat /= self.world_size
        offset = 0
        for p in parameters:
            n = p.numel()
            p.grad = flat[offset : offset + n].view_as(p).to(p.dtype)
            offset += n
        return float(flat[-1])

    def broadcast(self, tensors: Iterable[torch.Tensor]) -> None:
        """Overwrite ``tensors`` in place with rank 0's (a step hook's own updates)."""
        tensors = list(tensors)
        if self.world_size == 1 or not tensors:
            return
        flat = torch.cat([t.detach().reshape(-1) for t in tensors])
        with self._collective():
            torch.distributed.broadcast(flat, src=0)  # the group Fabric set up
        with torch.no_grad():
            offset = 0
            for t in tensors:
                t.copy_(flat[offset : offset + t.numel()].view_as(t))
                offset += t.numel()

    def gather_rng(self) -> list[torch.Tensor]:
        """Every rank's torch RNG state, rank order (one entry for one process)."""
        state = torch.get_rng_state()
        if self.world_size == 1:
            return [state]
        gathered = [torch.empty_like(state, device=self.device) for _ in range(self.world_size)]
        with self._collective():  # torch's own: Fabric's all_gather warns of a deprecation
            torch.distributed.all_gather(gathered, state.to(self.device))
        # Copies, not views of the gathered stack: a view saved and loaded keeps its storage
        # offset, which torch.set_rng_state does not honour (a segfault).
        return [s.cpu().clone() for s in gathered]

    @contextlib.contextmanager
    def _collective(self) -> typing.Iterator[None]:
        """Turn a collective's failure because a process ended into :class:`ProcessLost`."""
        try:
            yield
        except RuntimeError as error:  # gloo/NCCL: "Connection closed by peer", "... reset"
            raise ProcessLost(self._lost()) from error

    def _lost(self) -> str:
        """Which process ended: rank 0 sees the local processes Fabric started; another rank
        has lost rank 0 in a run of two, or some other process."""
        launcher = getattr(getattr(self.fabric, "strategy", None), "launcher", None)
        procs = getattr(launcher, "procs", None) or []
        deadline = time.monotonic() + _REAP_SECONDS
        while procs and time.monotonic() < deadline:
            ended = [(rank, p.poll()) for rank, p in enumerate(procs, start=1)]
            ended = [(rank, code) for rank, code in ended if code is not None]
            if ended:
                return "; ".join(
                    f"the process of rank {rank} ended "
                    + (f"(killed by signal {-code})" if code < 0 else f"(exit status {code})")
                    for rank, code in ended
                )
            time.sleep(0.1)
        if self.world_size == 2:
            return f"the process of rank {1 - self.rank} ended"
        return "another process of the run ended"

    def set_rng(self, states: list[torch.Tensor]) -> None:
        """Restore this rank's entry of :meth:`gather_rng`; refuse another number of ranks."""
        if len(states) != self.world_size:
            raise ValueError(
                f"resume: the checkpoint was written by {len(states)} process(es); resume it "
                f"with the same number, not {self.world_size}"
            )
        torch.set_rng_state(states[self.rank].clone())
