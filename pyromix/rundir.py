"""Run directories: output paths checked before any work, one writer at a time, no leftovers.

A run directory has one writer. :func:`run_lock` takes an advisory ``flock`` on a lock file in
it, which the operating system releases when its process ends however it ends, so the lock of
a process killed with ``kill -9`` never blocks a ``--resume``; a second writer is refused.
"""

from __future__ import annotations

import errno
import fcntl
import glob
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "CHECKPOINT",
    "METRICS",
    "CONFIG",
    "LOCK",
    "RUN_FILES",
    "write_atomically",
    "remove_temporaries",
    "RunDirectoryBusy",
    "DiskFull",
    "check_output_folder",
    "check_output_file",
    "run_lock",
    "refuse_existing_run",
]

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.json"
CONFIG = "config.json"
LOCK = ".pyromix.lock"
# Every file a run directory holds; each is written atomically, so a killed writer leaves at most
# a temporary beside it, which the next writer removes.
RUN_FILES = (
    CHECKPOINT,
    METRICS,
    CONFIG,
    "samples.png",
    "curves.png",
    "reconstructions.png",
    "latents.png",
    "manifold.png",
)


def refuse_existing_run(out: str | os.PathLike, *, resume: bool, force: bool) -> None:
    """Refuse to start a new run in a folder that already holds one, unless resuming or forced.

    Raises:
        ValueError: naming the folder and the two ways on (``resume`` / ``force``).
    """
    if (Path(out) / CHECKPOINT).exists() and not (resume or force):
        raise ValueError(
            f"out: {str(out)!r} already holds a run; pass --resume or --force (resume=True or "
            "force=True in Python) to continue it or start over"
        )


class RunDirectoryBusy(ValueError):
    """Another process is writing the run directory (the CLI exits with status 2)."""


def check_output_folder(path: str | os.PathLike, what: str = "out") -> None:
    """Refuse, before any work, a folder that cannot be created or written; leaves nothing.

    Checks, in order: an empty name; a file in the way; a dangling symlink or a symlink loop on
    the way; names or a whole path longer than the file system allows; and that a file can be
    created in the deepest folder that exists (a probe file, removed at once), which catches
    read-only and virtual file systems (``/proc``) that permissions do not show.

    Arguments:
        path: the folder to write in (it may not exist yet).
        what: the argument's name, for the message.

    Raises:
        ValueError: one line saying which of the above it is.

    Example:
        >>> check_output_folder("/proc/version/run")
        Traceback (most recent call last):
        ...
        ValueError: out: cannot create '/proc/version/run': '/proc/version' is a file
    """
    if not os.fspath(path):
        raise ValueError(f"{what}: expected a folder name, got ''")
    path = Path(path)
    existing, missing = _walk(path, what)
    if existing == path and not path.is_dir():
        raise ValueError(f"{what}: {str(path)!r} exists and is not a folder")
    if missing is not None:
        _refuse_broken_link(missing, what)
    if not existing.is_dir():
        raise ValueError(f"{what}: cannot create {str(path)!r}: {str(existing)!r} is a file")
    _check_lengths(path, existing, what, reserve=0)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{what}: cannot write in {str(existing)!r} (permission denied)")
    try:
        fd, probe = tempfile.mkstemp(prefix=".pyromix-probe", dir=existing)
    except OSError as e:
        raise ValueError(f"{what}: cannot write in {str(existing)!r} ({e.strerror})") from None
    os.close(fd)
    os.unlink(probe)


def check_output_file(path: str | os.PathLike, what: str) -> None:
    """Refuse, before any work, a file path that cannot be written; leaves nothing.

    The checks of :func:`check_output_folder` on its folder, and a name short enough for the
    temporary file that :func:`write_atomically` writes beside it.

    Raises:
        ValueError: ``path`` is empty or a folder, its folder cannot be created or written, its
            name is too long, or it is read-only.
    """
    if not os.fspath(path):
        raise ValueError(f"{what}: expected a file name, got ''")
    path = Path(path)
    check_output_folder(path.parent, what)
    _check_lengths(path, _walk(path.parent, what)[0], what, reserve=_TEMPORARY_EXTRA)
    if path.is_dir():
        raise ValueError(f"{what}: {str(path)!r} is a folder; expected a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"{what}: cannot overwrite {str(path)!r} (permission denied)")


# What mkstemp adds to a name in write_atomically: 8 random characters and ".tmp".
_TEMPORARY_EXTRA = 12


def _walk(path: Path, what: str) -> tuple[Path, Path | None]:
    """The deepest existing folder on the way to ``path`` (``path`` itself if it exists) and the
    first name after it (None if none), refusing on the way a name too long to look up."""
    current = Path(path.anchor) if path.anchor else Path()
    for name in path.parts[len(current.parts) :]:
        _check_lengths(Path(name), current, what, reserve=0)
        step = current / name
        if not step.exists():
            return current, step
        current = step
    return current, None


def _refuse_broken_link(path: Path, what: str) -> None:
    """Refuse a symlink that leads nowhere (dangling, or a loop): nothing can be created there."""
    if not path.is_symlink() or path.exists():
        return
    try:
        os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ValueError(f"{what}: {str(path)!r} is a symlink loop") from None
    target = os.readlink(path)
    raise ValueError(f"{what}: {str(path)!r} is a symlink to {target!r}, which does not exist")


def _check_lengths(path: Path, existing: Path, what: str, reserve: int) -> None:
    """Refuse names (plus ``reserve`` bytes for the last) or a path longer than the file system
    of ``existing`` allows."""
    name_max = _pathconf(existing, "PC_NAME_MAX", 255)
    path_max = _pathconf(existing, "PC_PATH_MAX", 4096)
    names = path.parts[len(existing.parts) :] if path.is_relative_to(existing) else path.parts
    for index, name in enumerate(names):
        extra = reserve if index == len(names) - 1 else 0
        if len(os.fsencode(name)) + extra > name_max:
            raise ValueError(
                f"{what}: the name {name[:40]!r}... is {len(os.fsencode(name))} bytes; the file "
                f"system allows {name_max - extra} here"
            )
    full = len(os.fsencode(os.path.abspath(path))) + reserve
    if full >= path_max:
        raise ValueError(
            f"{what}: the path is {full} bytes long; the file system allows {path_max - 1}"
        )


def _pathconf(path: Path, name: str, default: int) -> int:
    try:
        return os.pathconf(path, name)
    except (OSError, ValueError, AttributeError):  # not defined here (Windows), or unlimited
        return default


class DiskFull(OSError):
    """A write ran out of space; the file it replaces is intact (the CLI exits with status 1)."""


def write_atomically(
    path: str | os.PathLike, write: Callable[[Any], None], mode: str = "wb"
) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it to ``path``.

    The data is flushed to disk (fsync) before the rename, and the folder after it, so that
    ``path`` holds either its previous content or the whole new one, even across a power loss.
    A failure at any stage removes the temporary file and leaves ``path`` as it was; a process
    killed mid-write leaves a ``<name>*.tmp`` file that :func:`remove_temporaries` clears.
    The file gets the mode ``open()`` would give it: an existing file's, else 0o666 less the
    umask.

    Raises:
        DiskFull: the device ran out of space (however the writer reported it).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _creation_mode(path))
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        full = isinstance(error, Exception) and _out_of_space(error, path.parent)
        Path(tmp).unlink(missing_ok=True)
        if full:
            raise DiskFull(
                errno.ENOSPC,
                f"no space left on the device of {str(path.parent)!r} while writing "
                f"{path.name}; the previous {path.name} is intact",
            ) from error
        raise
    _fsync_folder(path.parent)
    return path


# Writers that hide the errno (torch.save's "file write failed") are taken for a full disk when
# less than this is free once they fail.
_NEARLY_FULL = 1 << 20


def _out_of_space(error: Exception, folder: Path) -> bool:
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    try:
        return shutil.disk_usage(folder).free < _NEARLY_FULL
    except OSError:
        return False


def _creation_mode(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process's umask, read without changing it where /proc tells it (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: read by setting, then restore at once
    os.umask(mask)
    return mask


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
    writing a checkpoint leaves nothing behind, its ``config.json`` included).

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
            if created and not (out / CHECKPOINT).exists():  # a run that saved nothing is none
                (out / CONFIG).unlink(missing_ok=True)
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
