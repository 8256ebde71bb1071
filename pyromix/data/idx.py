"""MNIST and Fashion-MNIST from their IDX files (raw or gzipped), found in a folder the user
names, ``$PYROMIX_DATA``, or where Debian's ``dataset-fashion-mnist`` package puts them."""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from .containers import DataError
from .source import Source

__all__ = ["idx_dataset"]

# IDX file stems (each may also be gzipped) and the magic numbers of unsigned-byte image (3-d)
# and label (1-d) files.
_IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_IMAGES_MAGIC, _LABELS_MAGIC = 2051, 2049
# Where Debian's dataset-fashion-mnist package puts the gzipped IDX files.
_SYSTEM_DIRS = {"fashion-mnist": ("/usr/share/datasets/fashion-mnist",)}
_HOW_TO_GET = {
    "fashion-mnist": "Install them with `apt-get install dataset-fashion-mnist` (to "
    "/usr/share/datasets/fashion-mnist), or pass --data-dir DIR (data_dir=DIR), or set "
    "PYROMIX_DATA=DIR.",
    "mnist": "Download the four MNIST IDX files yourself, then pass --data-dir DIR (data_dir=DIR) "
    "or set PYROMIX_DATA=DIR.",
}

def idx_dataset(
    name: str, data_dir: str | os.PathLike | None, rng: np.random.Generator
) -> Source:
    files = _find_idx(name, data_dir)
    arrays = {
        key: _read_idx(path, _IMAGES_MAGIC if key.endswith("images") else _LABELS_MAGIC)
        for key, path in files.items()
    }
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if len(images) != len(labels):
            raise DataError(
                f"{files[f'{part}_images']} has {len(images)} images but "
                f"{files[f'{part}_labels']} has {len(labels)} labels"
            )
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise DataError(
            f"train images are {arrays['train_images'].shape[1:]} but test images are "
            f"{arrays['test_images'].shape[1:]}; the IDX files do not belong together"
        )
    n_train, n_test = len(arrays["train_images"]), len(arrays["test_images"])
    if n_train < 2 or n_test < 1:
        raise DataError(f"{name}: need >= 2 train and >= 1 test images; got {n_train}, {n_test}")
    n_val = max(1, round(n_train / 6))  # 10,000 of the official 60,000
    order = rng.permutation(n_train)
    parts = (order[n_val:], order[:n_val], np.arange(n_train, n_train + n_test))
    x = np.concatenate([arrays["train_images"], arrays["test_images"]])
    y = np.concatenate([arrays["train_labels"], arrays["test_labels"]])
    height, width = x.shape[1:]
    return Source(name, x.reshape(len(x), -1), y, (height, width), parts, scale=255.0)


def _find_idx(name: str, data_dir: str | os.PathLike | None) -> dict[str, Path]:
    dirs = [] if data_dir is None else [Path(data_dir).expanduser()]
    env = os.environ.get("PYROMIX_DATA")
    if env:
        dirs += [Path(env).expanduser(), Path(env).expanduser() / name]
    dirs += [Path(d) for d in _SYSTEM_DIRS.get(name, ())]
    looked = []
    for directory in dirs:
        found = {}
        for key, stem in _IDX_FILES.items():
            path = next(
                (p for p in (directory / stem, directory / f"{stem}.gz") if p.is_file()), None
            )
            if path is not None:
                found[key] = path
        if len(found) == len(_IDX_FILES):
            return found
        missing = [stem for key, stem in _IDX_FILES.items() if key not in found]
        looked.append(
            f"{directory} (missing {', '.join(missing)})"
            if directory.is_dir()
            else f"{directory} (no such directory)"
        )
    where = "; ".join(looked) or "nowhere (no data_dir given and PYROMIX_DATA is not set)"
    raise DataError(
        f"{name} IDX files not found; looked in: {where}. Expected "
        f"{', '.join(_IDX_FILES.values())} (each raw or .gz). {_HOW_TO_GET[name]}"
    )


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """An unsigned-byte IDX file (raw or gzipped) as an array of the shape in its header."""
    kind = "images" if magic == _IMAGES_MAGIC else "labels"
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":  # the gzip signature, so a misnamed file still loads
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: cannot read or decompress: {err}") from err
    if len(raw) < 4:
        raise DataError(f"{path}: truncated IDX file: {len(raw)} bytes, shorter than a header")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise DataError(f"{path}: not an IDX {kind} file: magic number {found}, expected {magic}")
    ndim = magic & 0xFF  # the magic's last byte is the number of dimensions
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX file: {len(raw)} bytes, header needs {header}")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    size = math.prod(shape)
    if len(raw) - header != size:
        problem = "truncated IDX file" if len(raw) - header < size else "IDX file too long"
        raise DataError(
            f"{path}: {problem}: header says shape {shape} = {size} bytes of data, "
            f"found {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=np.uint8, count=size, offset=header).reshape(shape)
