"""Train, reload, evaluate and report a named recipe: the layer the CLI and estimators share.

A run directory holds ``checkpoint.pt`` (weights, optimiser, history and the recipe's plain-data
arguments, including how to reload the data), ``config.json``, ``metrics.json`` and the figures.
One concept per module, and none names a recipe (what is a recipe's own lives in its
:class:`~pyromix.recipes.Recipe`: its schema, ``check``, ``resolve``, hooks):

- ``run``: :class:`Run`, what a run's arguments must hold, :func:`weights_epoch`;
- ``prepare``: :func:`prepare_recipe`, every refusal before training;
- ``training``: :func:`train_run`, :func:`train_recipe`;
- ``store``: the checkpoint's recipe record, ``metrics.json`` read and written;
- ``load``: :func:`load_run`;
- ``readouts``: cluster readouts, the aggregated posterior, reconstructions, samples;
- ``scoring``: :func:`evaluate_run` and :func:`evaluate_points`;
- ``report``: :func:`write_report`.
"""

from ..recipes.arguments import MAX_SEED
from . import run, store, training
from .load import load_run
from .prepare import DATA_SOURCE, DATASET_DEFAULTS, prepare_recipe
from .readouts import (
    CATEGORY_SOURCES,
    EVAL_CHUNK,
    aggregated_posterior,
    cluster_probabilities,
    generate,
    reconstruct,
)


from .report import MAX_SAMPLE_ROWS, write_report
from .run import Run, weights_epoch
from .scoring import (
    COVERAGE_SAMPLES,
    NO_LIKELIHOOD,
    evaluate_points,
    evaluate_run,
    run_arguments,
    skipped_features,
)


from .store import load_run_checkpoint, read_metrics, write_json
from .training import train_recipe, train_run

# The data below is bound here again, with its doc comment, for the API reference.

#: What a saved run's arguments must hold for load_run, evaluation, reports and compare to rebuild
#: its data and score it; a recipe's build reads its own keys besides.
RUN_ARGS_KEYS = run.RUN_ARGS_KEYS
#: What a resumed run may change; every other argument given must match the recorded one.
RESUMABLE = run.RESUMABLE
#: What ties a metrics.json to its run; evaluate keeps a file's other entries only when these match.
RUN_IDENTITY = store.RUN_IDENTITY
#: Seconds between checkpoints, so a killed run loses at most this many.
CHECKPOINT_EVERY = training.CHECKPOINT_EVERY

__all__ = [
    "RUN_ARGS_KEYS",
    "Run",
    "prepare_recipe",
    "train_run",
    "train_recipe",
    "load_run",
    "weights_epoch",
    "run_arguments",
    "evaluate_run",
    "evaluate_points",
    "cluster_probabilities",
    "aggregated_posterior",
    "reconstruct",
    "write_report",
    "write_json",
    "skipped_features",
    "generate",
    "read_metrics",
    "load_run_checkpoint",
    "RESUMABLE",
    "RUN_IDENTITY",
    "CHECKPOINT_EVERY",
    "CATEGORY_SOURCES",
    "COVERAGE_SAMPLES",
    "DATA_SOURCE",
    "DATASET_DEFAULTS",
    "EVAL_CHUNK",
    "MAX_SAMPLE_ROWS",
    "MAX_SEED",
    "NO_LIKELIHOOD",
]
