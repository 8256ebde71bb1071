"""``config.json``: what a run directory says of itself, readable without pyromix.

Written when training starts (so a crashed run has it too) and rewritten on ``--resume``: the
recipe and where it came from, the resolved arguments (data files by absolute path, with their
SHA-256 as :mod:`pyromix.identity` records them), the versions of Python, torch, Pyro and
pyromix, and the commit of the pyromix checkout when it runs from one. ``--resume`` and
``compare`` read it back to say when software versions differ.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import pyro
import torch

from . import __version__
from .rundir import CONFIG, write_atomically

__all__ = ["CONFIG", "run_config", "write_config", "read_config", "version_changes"]


def software() -> dict[str, Any]:
    """The versions that can change a run's numbers, and the pyromix commit (None outside a
    git checkout)."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "pyro": pyro.__version__,
        "pyromix": __version__,
        "pyromix_commit": _source_commit(),
    }


def _source_commit() -> str | None:
    source = Path(__file__).resolve().parents[1]
    if not (source / ".git").exists():
        return None
    try:
        done = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def run_config(name: str, args: dict[str, Any], origin: dict[str, Any]) -> dict[str, Any]:
    """The configuration of a run of recipe ``name`` with resolved ``args``."""
    return {
        "recipe": name,
        "recipe_origin": origin,
        "arguments": args,
        "software": software(),
        "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def write_config(out: str | os.PathLike, config: dict[str, Any]) -> Path:
    """Write ``out/config.json`` atomically; a run resumed keeps the first software it was
    trained with under ``"trained_with"``."""
    previous = read_config(out)
    if previous is not None:
        config = {**config, "trained_with": previous.get("trained_with", previous["software"])}
    text = json.dumps(config, indent=2, default=_jsonable) + "\n"
    return write_atomically(Path(out) / CONFIG, lambda f: f.write(text), mode="w")


def read_config(out: str | os.PathLike) -> dict[str, Any] | None:
    """``out/config.json``, or None for a run written before it existed or without it.

    Raises:
        ValueError: naming the file, when it is not the JSON that :func:`write_config` writes.
    """
    path = Path(out) / CONFIG
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text())
        config["software"]
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"config: {str(path)!r} is not a pyromix config.json ({e})") from None
    return config


def version_changes(config: dict[str, Any] | None, now: dict[str, Any] | None = None) -> list[str]:
    """``"torch 2.13.0 -> 2.14.1"`` for each version that differs between a run's config and
    ``now`` (this process by default)."""
    if config is None:
        return []
    now = software() if now is None else now
    return [
        f"{key} {config['software'].get(key)} -> {now[key]}"
        for key in ("python", "torch", "pyro", "pyromix")
        if config["software"].get(key) != now[key]
    ]


def _jsonable(value: Any) -> Any:
    if isinstance(value, (Path, os.PathLike)):
        return str(value)
    if isinstance(value, (set, tuple)):
        return list(value)
    return repr(value)
