"""Datasets of one's own: registered like a recipe, loaded by name, trained through train_recipe
and from the CLI with --plugin MODULE or a recipe file; unknown names get a close match."""

import json
import math
import sys

import numpy as np
import pytest

from pyromix.cli import main
from pyromix.data import (
    DATASETS,
    DataError,
    dataset_origin,
    load_dataset,
    register_dataset,
    unregister_dataset,
)
from pyromix.data import registry
from pyromix.recipes import RECIPES
from pyromix.recipes import registry as recipe_registry
from pyromix.runs import evaluate_run, train_recipe

FAST = ["--epochs", "1", "--samples", "20", "--hidden", "8", "--quiet"]

# A user's loader: 60 seeded binary points of 6 pixels, labelled by their first pixel.
LOADER = """
import numpy as np
from pyromix.data import register_dataset


def rings(rng):
    x = (rng.random((60, 6)) < 0.3).astype(np.float32)
    return x, x[:, 0].astype(int)


register_dataset({name!r}, rings, description="60 binary points of a test")
"""


@pytest.fixture(autouse=True)
def _clean_registries():
    """Each test sees the shipped datasets and recipes only and leaves them so."""
    entries, names = dict(registry._ENTRIES), dict(DATASETS)
    recipes, origins = dict(RECIPES), dict(recipe_registry._ORIGINS)
    modules = set(sys.modules)
    yield
    registry._ENTRIES.clear(), registry._ENTRIES.update(entries)
    DATASETS.clear(), DATASETS.update(names)
    RECIPES.clear(), RECIPES.update(recipes)
    recipe_registry._ORIGINS.clear(), recipe_registry._ORIGINS.update(origins)
    for name in set(sys.modules) - modules:
        if name.startswith(("pyromix_plugin_", "my_data")):
            del sys.modules[name]


def rings(rng):
    x = (rng.random((60, 6)) < 0.3).astype(np.float32)
    return x, x[:, 0].astype(int)


def test_a_registered_dataset_loads_seeded_and_trains_through_train_recipe(tmp_path):
    register_dataset("rings", rings, description="60 binary points")
    ds = load_dataset("rings", seed=3)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (42, 6, 12)  # fractions 0.1 and 0.2
    expected = rings(np.random.default_rng(3))[0]  # the loader's draws, split by the same seed
    points = np.concatenate([ds.train.x.numpy(), ds.val.x.numpy(), ds.test.x.numpy()])
    assert sorted(map(tuple, points)) == sorted(map(tuple, expected))
    assert ds.num_classes == 2 and not np.array_equal(load_dataset("rings", seed=4).test.x, ds.test.x)
    assert dataset_origin("rings")["kind"] == "module" and DATASETS["rings"] == "60 binary points"

    run = train_recipe("vae", "rings", out=tmp_path / "run", epochs=1, hidden=[8], progress=False)
    assert run.args["dataset"] == "rings" and run.history.epochs == 1
    assert math.isfinite(evaluate_run(run, 10)["test_log_likelihood"])
    unregister_dataset("rings")
    assert "rings" not in DATASETS


def test_a_dataset_plugin_trains_from_the_cli(tmp_path, monkeypatch, capsys):
    (tmp_path / "my_data.py").write_text(LOADER.format(name="my-rings"))
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "vae", "--data", "my-rings", "--out", "a", *FAST]) == 2
    assert "unknown dataset 'my-rings'" in capsys.readouterr().err
    assert main(["fit", "vae", "--data", "my-rings", "--plugin", "my_data", "--out", "a", *FAST]) == 0
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert metrics["dataset"] == "my-rings" and metrics["test_points"] == 12
    assert dataset_origin("my-rings") == {
        "kind": "module", "module": "my_data", "path": str(tmp_path / "my_data.py")
    }
    assert main(["list", "--plugin", "my_data"]) == 0
    assert "  my-rings         60 binary points of a test" in capsys.readouterr().out
    unregister_dataset("my-rings")  # as a new process knows it: not at all, until --plugin
    del sys.modules["my_data"]
    assert main(["evaluate", "a", "--samples", "20"]) == 2
    assert "unknown dataset 'my-rings'" in capsys.readouterr().err
    assert main(["evaluate", "a", "--samples", "20", "--plugin", "my_data"]) == 0

    # A recipe file that registers a dataset too: running the file makes both available.
    (tmp_path / "my_recipes.py").write_text(
        LOADER.format(name="file-rings") + "from pyromix.recipes import RECIPES\nmine = RECIPES['vae']\n"
    )
    assert main(["fit", "my_recipes.py:mine", "--data", "file-rings", "--out", "b", *FAST]) == 0
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["dataset"] == "file-rings"


def test_unknown_dataset_names_get_a_close_match(capsys):
    with pytest.raises(DataError, match=r"unknown dataset 'digts'; did you mean 'digits'\?"):
        load_dataset("digts")
    assert main(["fit", "vae", "--data", "fashion-mnst", *FAST]) == 2
    err = capsys.readouterr().err.strip()
    assert "did you mean 'fashion-mnist'?" in err and "\n" not in err
    with pytest.raises(DataError) as info:
        load_dataset("zzzz")
    assert "did you mean" not in str(info.value) and "--plugin MODULE" in str(info.value)


@pytest.mark.parametrize(
    "name, loader, message",
    [
        ("Rings", rings, "name: expected lower-case letters"),
        ("rings.csv", rings, "not ending in .npy/.npz/.csv; got 'rings.csv'"),
        ("digits", rings, "name: 'digits' is a shipped dataset"),
        ("rings", "rings.csv", "loader: expected a callable returning the data, got str"),
    ],
)
def test_registration_refuses_bad_names_and_protects_shipped_datasets(name, loader, message):
    with pytest.raises(ValueError, match=message):
        register_dataset(name, loader)
    assert list(DATASETS) == ["digits", "mnist", "fashion-mnist", "onehot", "mixture1d"]
    with pytest.raises(ValueError, match="'digits' is a shipped dataset and cannot be removed"):
        unregister_dataset("digits")


def test_a_loader_returning_bad_data_is_named():
    register_dataset("flat", lambda seed: np.arange(10.0))
    with pytest.raises(DataError, match=r"dataset 'flat': its loader's data must have shape \(N, D\)"):
        load_dataset("flat")
    register_dataset("with-labels", lambda: np.zeros((5, 2)))
    with pytest.raises(DataError, match="labels is only for user data; 'with-labels' comes"):
        load_dataset("with-labels", labels=np.zeros(5))
