"""Every field a run writes to ``metrics.json`` is documented in ``docs/metrics.md``.

A few tiny runs (one or two epochs on 100 digits per split) are trained through ``pyromix fit``,
chosen to reach every branch of the evaluation: a VAE (likelihood, bits/dim, latent units), a
Gaussian-mixture VAE with two restarts (clusters, ``restarts``), M2 with revealed labels
(``test_accuracy``), the implicit prior (its normaliser), a flow (no latents), a GAN (no
likelihood: mode coverage) and a user's plugin without optional methods (``skipped``). Every
field they write, at any depth, must have a row in the page's tables: nested objects as dotted
paths (``capture.graphs``), lists of objects as ``name[].key`` (``restarts[].seed``), and a map
whose keys are data (``skipped``: feature -> reason) as ``name.*``. A new field that no row
names fails here, with its path.
"""

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyromix.cli import main

DOCS = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"
TINY = ["--epochs", "1", "--limit", "100", "--quiet"]
RUNS = {
    "vae": ["vae", "--samples", "25"],  # S >= 25: Pareto k is estimated
    "gmvae": ["gmvae", "--pretrain-epochs", "1", "--restarts", "2", "--samples", "5"],
    "m2": ["m2", "--labeled", "0.1", "--samples", "5"],
    "iop": ["iop", "--samples", "5"],
    "flow": ["flow", "--samples", "5"],
    "gan": ["gan"],
    # a user's plugin without optional methods: the report says what it skipped
    "plugin": [f"{Path(__file__).parent / 'student_recipe.py'}:bare", "--samples", "5"],
}
# A table row's first cell: the field names it documents, each in backticks.
_ROW = re.compile(r"^\| *((?:`[^`]+`(?:, *)?)+) *\|", re.M)


def field_paths(metrics: dict, prefix: str = "") -> Iterator[str]:
    """Every field of a ``metrics.json`` object, nested ones as paths (see the module)."""
    for key, value in metrics.items():
        path = f"{prefix}{key}"
        yield path
        if isinstance(value, dict):
            yield from field_paths(value, f"{path}.")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                yield from field_paths(item, f"{path}[].")


def documented_fields(text: str) -> list[str]:
    """The field names in the first cells of the page's table rows (header rows excluded)."""
    return [name for cell in _ROW.findall(text) for name in re.findall(r"`([^`]+)`", cell)]


def undocumented(paths: set[str], documented: list[str]) -> list[str]:
    """The paths no documented name covers; ``name.*`` covers every key one level below."""
    exact = set(documented)
    maps = {name[:-2] for name in documented if name.endswith(".*")}
    return sorted(p for p in paths if p not in exact and p.rpartition(".")[0] not in maps)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Each run's ``metrics.json``, as ``pyromix fit`` wrote it."""
    root = tmp_path_factory.mktemp("metrics-docs")
    found = {}
    for name, argv in RUNS.items():
        out = root / name
        assert main(["fit", *argv, *TINY, "--out", str(out)]) == 0, name
        found[name] = json.loads((out / "metrics.json").read_text())
    return found


def test_every_written_field_is_documented(written: dict[str, dict]) -> None:
    documented = documented_fields(DOCS.read_text())
    missing = {
        name: undocumented(set(field_paths(metrics)), documented)
        for name, metrics in written.items()
    }
    missing = {name: paths for name, paths in missing.items() if paths}
    assert not missing, f"fields written but not in docs/metrics.md: {missing}"
    # the runs reach the nested forms the rules are for
    paths = {p for metrics in written.values() for p in field_paths(metrics)}
    assert {"capture.graphs", "restarts[].seed", "skipped.samples", "bits_per_dim"} <= paths
    assert {"test_accuracy", "prior_log_normalizer", "class_entropy", "cluster_shares"} <= paths


def test_each_field_is_documented_once() -> None:
    documented = documented_fields(DOCS.read_text())
    assert len(documented) > 50
    twice = sorted({name for name in documented if documented.count(name) > 1})
    assert not twice, f"documented more than once: {twice}"


def test_the_check_can_fail() -> None:
    text = "| field | meaning |\n| --- | --- |\n| `a`, `b` | x |\n| `m.*` | y |\n| `l[].k` | z |\n"
    assert documented_fields(text) == ["a", "b", "m.*", "l[].k"]
    metrics = {"a": 1, "b": {"c": 2}, "m": {"any": "x"}, "l": [{"k": 1, "new": 2}], "new": None}
    paths = set(field_paths(metrics))
    assert paths == {"a", "b", "b.c", "m", "m.any", "l", "l[].k", "l[].new", "new"}
    assert undocumented(paths, documented_fields(text)) == ["b.c", "l", "l[].new", "m", "new"]
