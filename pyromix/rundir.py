"""Run directories: output paths checked before any work, one writer at a time, no leftovers.

A run directory has one writer. :func:`run_lock` takes an advisory ``flock`` on a lock file in
it, which the operating system releases when its process ends however it ends, so the lock of
a process killed with ``kill -9`` never blocks a ``--resume``; a second writer is refused.
"""

from __future__ import annotations

import fcntl
import glob
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "CHECKPOINT",
    "METRICS",
    "LOCK",
    "RUN_FILES",
    "write_atomically",
    "remove_temporaries",
    "RunDirectoryBusy",
    "check_output_folder",
    "check_output_file",
    "run_lock",
]

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.json"
LOCK = ".pyromix.lock"
# Every file a run directory holds; each is written atomically, so a killed writer leaves at most
# a temporary beside it, which the next writer removes.
RUN_FILES = (
    CHECKPOINT,
    METRICS,
    "samples.png",
    "curves.png",
    "reconstructions.png",
    "latents.png",
    "manifold.png",
    "diagnostics.png",
)


class RunDirectoryBusy(ValueError):
    """Another process is writing the run directory (the CLI exits with status 2)."""


def check_output_folder(path: str | os.PathLike, what: str = "out") -> None:
    """Refuse, before any work, a folder that cannot be created or written; creates nothing.

    Arguments:
        path: the folder to write in (it may not exist yet).
        what: the argument's name, for the message.

    Raises:
        ValueError: ``path`` is a file, lies under a file, or is not writable.

    Example:
        >>> check_output_folder("/proc/version/run")
        Traceback (most recent call last):
        ...
        ValueError: out: cannot create '/proc/version/run': '/proc/version' is a file
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{what}: {str(path)!r} exists and is not a folder")
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise ValueError(f"{what}: cannot create {str(path)!r}: {str(existing)!r} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{what}: cannot write in {str(existing)!r} (permission denied)")


def check_output_file(path: str | os.PathLike, what: str) -> None:
    """Refuse, before any work, a file path that cannot be written; creates nothing.

    Raises:
        ValueError: ``path`` is a folder, its folder cannot be created, or it is read-only.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what}: {str(path)!r} is a folder; expected a file name")
    check_output_folder(path.parent, what)
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"{what}: cannot overwrite {str(path)!r} (permission denied)")


def write_atomically(
    path: str | os.PathLike, write: Callable[[Any], None], mode: str = "wb"
) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it to ``path``.

    The data is flushed to disk (fsync) before the rename, and the folder after it, so that
    ``path`` holds either its previous content or the whole new one, even across a power loss.
    A failure at any stage removes the temporary file and leaves ``path`` as it was; a process
    killed mid-write leaves a ``<name>*.tmp`` file that :func:`remove_temporaries` clears.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    return path


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable; a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the rename itself has happened
    finally:
        os.close(fd)


def remove_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the ``<name>*.tmp`` files :func:`write_atomically` left beside ``path`` when its
    process was killed mid-write; only call this while holding the run directory's lock.

    Returns:
        The files removed.
    """
    path = Path(path)
    removed = sorted(path.parent.glob(f"{glob.escape(path.name)}*.tmp"))
    for tmp in removed:
        tmp.unlink(missing_ok=True)
    return removed


@contextmanager
def run_lock(
    out: str | os.PathLike, written: tuple[str, ...] = (CHECKPOINT, METRICS)
) -> Iterator[Path]:
    """Hold the run directory ``out`` as its only writer for the ``with`` block.

    Creates ``out`` (and missing parents), locks it, and removes the temporary files that a
    killed writer left beside the files in ``written``. On leaving, the lock file goes, and so
    do the folders this call created if they are still empty (a run refused or failed before
    writing anything leaves nothing behind).

    Arguments:
        out: the run directory.
        written: names of files written atomically in it, whose temporaries are stale.

    Raises:
        ValueError: ``out`` cannot be written (:func:`check_output_folder`).
        RunDirectoryBusy: another live process holds the lock.

    Example:
        >>> import tempfile
        >>> with run_lock(Path(tempfile.mkdtemp()) / "run") as folder:
        ...     sorted(p.name for p in folder.iterdir())
        ['.pyromix.lock']
    """
    out = Path(out)
    check_output_folder(out)
    created = [p for p in (out, *out.parents) if not p.exists()]
    out.mkdir(parents=True, exist_ok=True)
    try:
        fd = _acquire(out / LOCK)
        try:
            for name in written:
                remove_temporaries(out / name)
            yield out
        finally:
            (out / LOCK).unlink(missing_ok=True)  # before closing: a waiter rechecks the inode
            os.close(fd)
    finally:
        for folder in created:  # deepest first; stops at the first that holds something
            try:
                folder.rmdir()
            except OSError:
                break


def _acquire(path: Path) -> int:
    """An open, locked descriptor of ``path``, which holds this process's id."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            pid = f" (pid {holder})" if holder.isdigit() else ""
            raise RunDirectoryBusy(
                f"run directory {str(path.parent)!r} is in use by another pyromix process{pid}; "
                "wait for it to end, or write elsewhere"
            ) from None
        # The previous holder unlinks the file before releasing it: a lock taken on a file that
        # is no longer at ``path`` locks nothing, so open the new one.
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd
