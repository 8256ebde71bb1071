"""Datasets: scikit-learn digits (the default), MNIST and Fashion-MNIST from IDX files, the papers'
synthetic sets, datasets of your own (:func:`pyromix.data.register_dataset`), and user arrays and files; all
as float32 ``(N, D)`` tensors split into train/val/test.

Every bad input raises :class:`DataError` with a message that names the argument, what was
expected and what was given, before any model sees the data. The modules:
``pyromix.data.containers`` (splits, datasets, batches), ``pyromix.data.registry``
(names -> loaders), ``pyromix.data.builtin`` (the shipped datasets),
``pyromix.data.idx`` (IDX files), ``pyromix.data.files`` (user files) and
``pyromix.data.loading`` (:func:`load_dataset`).
"""

from . import builtin  # noqa: F401 - registers the shipped datasets
from .containers import DataError, Dataset, Split, batches, binarize
from .files import USER_SUFFIXES
from .loading import load_dataset
from .registry import DATASETS, dataset_origin, register_dataset, unregister_dataset

__all__ = [
    "DATASETS",
    "USER_SUFFIXES",
    "DataError",
    "Dataset",
    "Split",
    "batches",
    "binarize",
    "load_dataset",
    "register_dataset",
    "unregister_dataset",
    "dataset_origin",
]
