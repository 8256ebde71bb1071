"""Data identity: a run records which file it was trained on, by place and by content.

At ``fit`` a user data file (``.npy``, ``.npz``, ``.csv``, and a labels file) is recorded by its
resolved absolute path and the SHA-256 of its bytes (:func:`record_data`). Whenever the run
reads its data again, to evaluate, sample or resume, :func:`locate_data` finds it there, or
where ``--data`` (``--labels``) now points, and refuses a file whose content differs from what
was trained on: a changed file would silently give other numbers, or fail deep in a network
with a shape error. Named datasets (digits, ...) and in-memory arrays are not files and are
left as they are.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from .data import USER_SUFFIXES, DataError

__all__ = ["HASH_KEYS", "file_digest", "is_data_file", "record_data", "locate_data"]

#: The run argument that holds each file argument's SHA-256.
HASH_KEYS = {"data": "data_sha256", "labels": "labels_sha256"}
_FLAGS = {"data": "--data", "labels": "--labels"}


def file_digest(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, hex.

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile() as f:
        ...     file_digest(f.name)[:12]
        'e3b0c44298fc'
    """
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_data_file(value: Any) -> bool:
    """Whether ``value`` names a user file (by its suffix) rather than a dataset or an array.

    Example:
        >>> is_data_file("points.csv"), is_data_file("digits")
        (True, False)
    """
    return isinstance(value, (str, os.PathLike)) and (Path(value).suffix.lower() in USER_SUFFIXES)


def record_data(args: dict[str, Any], data: Any, labels: Any) -> None:
    """Record in a new run's ``args`` where its data (and labels) file is and what it holds.

    ``args["data"]`` becomes the resolved absolute path of a file (the name of a dataset,
    ``"array"`` for an array), ``args["data_sha256"]`` its digest; likewise ``labels``. A file
    that does not exist is left for :func:`pyromix.data.load_dataset` to refuse.
    """
    for key, value in (("data", data), ("labels", labels)):
        if is_data_file(value) and Path(value).expanduser().is_file():
            path = Path(value).expanduser().resolve()
            args[key], args[HASH_KEYS[key]] = str(path), file_digest(path)
        elif key == "data":
            args[key] = str(value) if isinstance(value, (str, os.PathLike)) else "array"
        elif isinstance(value, (str, os.PathLike)):
            args[key] = str(value)
    if args.get("data_dir") is not None:  # IDX files: where they are, whatever the folder now
        args["data_dir"] = str(Path(args["data_dir"]).expanduser().resolve())


def locate_data(args: dict[str, Any], data: Any = None, labels: Any = None) -> tuple[Any, Any]:
    """The data and labels a saved run reads now, checked against what it was trained on.

    Arguments:
        args: the run's recorded arguments; a relocated file's new path replaces the old.
        data, labels: where the user says the files are now (``--data``, ``--labels``), or
            None for the recorded places; for a run on an in-memory array, the array.

    Returns:
        ``(data, labels)`` to load: paths, a dataset name, or the arrays given.

    Raises:
        pyromix.data.DataError: a recorded file is missing and no new place was given, or a
            file's content differs from the recorded digest (one line naming both).
    """
    found = {}
    for key, given in (("data", data), ("labels", labels)):
        recorded, digest = args.get(key), args.get(HASH_KEYS[key])
        named = recorded not in (None, "array") and not is_data_file(recorded)
        if given is not None and (named or not is_data_file(given)):
            if (named or isinstance(given, str)) and str(given) != recorded:
                raise DataError(f"{key}: the run was trained on {recorded!r}, not {given!r}")
            found[key] = given  # an array, or the run's dataset name
            continue
        if digest is None or not is_data_file(recorded):  # a named dataset, or an older run
            found[key] = recorded if given is None else given
            continue
        path = Path(recorded if given is None else given).expanduser()
        if not path.is_file():
            raise DataError(
                f"{key}: the run's {key} file {str(path)!r} is not there; pass {_FLAGS[key]} "
                "PATH to where it is now"
                if given is None
                else f"{key} file not found: {str(path)!r}"
            )
        now = file_digest(path)
        if now != digest:
            raise DataError(
                f"{key}: {str(path)!r} "
                + (
                    "changed since the run was trained"
                    if given is None
                    else "is not the run's file"
                )
                + f" (SHA-256 {now[:12]}..., the run recorded {digest[:12]}... for "
                f"{str(recorded)!r}); pass {_FLAGS[key]} PATH to the file it was trained on"
            )
        args[key] = found[key] = str(path.resolve())
    return found["data"], found["labels"]
