import os
from pathlib import Path

import pyro
import pytest
import torch

# The test networks are tiny: one intra-op thread is as fast and far steadier when cores are shared.
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
# What installing and running the suite may write inside the checkout (caches, the venvs).
_NOT_WATCHED = {
    ".git", ".venv", ".ci-venv", "__pycache__", ".pytest_cache", ".hypothesis", ".ipynb_checkpoints"
}


def checkout_listing(root: Path = ROOT) -> dict[str, tuple[int, int]]:
    """Every file of the checkout (but caches and venvs) with its size and modification time."""
    listing = {}
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [
            name for name in subfolders if name not in _NOT_WATCHED and not name.endswith(".egg-info")
        ]
        for name in files:
            path = Path(folder, name)
            stat = path.lstat()
            listing[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return listing


def listing_changes(before: dict, after: dict) -> list[str]:
    """The paths created, removed or rewritten between two listings, sorted."""
    return sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))


@pytest.fixture(scope="session", autouse=True)
def _checkout_untouched():
    """The suite is hermetic: no test writes into the checkout (README's commands run in order
    in one folder, so a test that wrote `runs/` there would meet the user's own run)."""
    before = checkout_listing()
    yield
    changed = listing_changes(before, checkout_listing())
    assert not changed, f"tests wrote into the checkout {ROOT}: {changed[:10]}"


def _registries() -> list[dict]:
    """The recipe and dataset registries, which a test's plugins add to."""
    from pyromix.data import registry as datasets
    from pyromix.recipes import registry as recipes

    return [recipes.RECIPES, recipes._ORIGINS, datasets._ENTRIES, datasets.DATASETS]


@pytest.fixture(autouse=True)
def _hermetic(tmp_path, monkeypatch):
    """Every test runs in its own temporary working folder, seeded, with an empty param store,
    and leaves the recipe and dataset registries as it found them (a plugin it registered is
    gone for the next test, whatever the order)."""
    monkeypatch.chdir(tmp_path)
    pyro.set_rng_seed(0)
    pyro.clear_param_store()
    saved = [dict(registry) for registry in _registries()]
    yield
    pyro.clear_param_store()
    for registry, entries in zip(_registries(), saved):
        registry.clear(), registry.update(entries)


@pytest.fixture
def shipped_recipes_only():
    """The test sees the shipped recipes only and leaves them so, its plugin modules forgotten."""
    import sys

    from pyromix.recipes import RECIPES, registry

    recipes, origins = dict(RECIPES), dict(registry._ORIGINS)
    modules = set(sys.modules)
    yield
    RECIPES.clear(), RECIPES.update(recipes)
    registry._ORIGINS.clear(), registry._ORIGINS.update(origins)
    for name in set(sys.modules) - modules:
        if name.startswith(("pyromix_plugin_", "my_plugin", "my_dist")):
            del sys.modules[name]
