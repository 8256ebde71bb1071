"""Where :func:`~pyromix.train.fit` runs: one device by name, or processes through Fabric."""

from __future__ import annotations

import torch

from ..distributed import Devices, Replicas

__all__ = ["resolve_device", "replicas_for"]


def resolve_device(device: str | torch.device) -> torch.device:
    """``"cpu"``, ``"cuda"`` or ``"cuda:N"``, refusing CUDA when it is not available."""
    try:
        device = torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"device: expected 'cpu' or 'cuda[:N]', got {device!r}") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: 'cuda' was requested but torch.cuda.is_available() is False")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device: expected 'cpu' or 'cuda[:N]', got {str(device)!r}")
    return device


def replicas_for(device: str | torch.device | Devices | Replicas) -> Replicas:
    """The started :class:`~pyromix.distributed.Replicas` for ``fit``'s ``device`` argument."""
    if isinstance(device, Replicas):
        return device
    return (device if isinstance(device, Devices) else Devices.parse(device)).start()
