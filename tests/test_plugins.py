"""Recipes of one's own: registered in Python, from FILE.py:NAME, --plugin MODULE or an entry
point; every run remembers where its recipe came from and reloads it like a shipped one."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest
import torch

from pyromix import register_recipe
from pyromix.cli import main
from pyromix.recipes import (
    RECIPES,
    Recipe,
    RecipeNotFoundError,
    get_recipe,
    recipe_origin,
    resolve_recipe,
    unregister_recipe,
)
from pyromix.runs import load_run, prepare_recipe, train_recipe
from pyromix.train import fit

FAST = ["--epochs", "2", "--samples", "30", "--hidden", "16", "--limit", "60", "--quiet"]

# The user's recipes, a file that the tests copy where each route needs it.
PLUGIN = (Path(__file__).parent / "student_recipe.py").read_text()


pytestmark = pytest.mark.usefixtures("shipped_recipes_only")  # each test sees them alone


def forget(name):
    """What a fresh process knows of a plugin recipe: nothing."""
    unregister_recipe(name)
    for module in [m for m in sys.modules if m.startswith(("pyromix_plugin_", "my_plugin"))]:
        del sys.modules[module]


def png(path):
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.std() > 0


def test_registry_refuses_bad_names_and_protects_shipped_recipes():
    with pytest.raises(ValueError, match="name: expected letters"):
        register_recipe("two words", RECIPES["vae"])
    with pytest.raises(ValueError, match="recipe: expected a pyromix.recipes.Recipe, got dict"):
        register_recipe("mine", {})
    other = Recipe("x", build=RECIPES["vae"].build, objective=RECIPES["vae"].objective)
    with pytest.raises(ValueError, match="'vae' is a shipped recipe"):
        register_recipe("vae", other)
    with pytest.raises(ValueError, match="cannot be removed"):
        unregister_recipe("vae")
    with pytest.raises(ValueError, match="unknown recipe 'mine'.*--plugin MODULE"):
        get_recipe("mine")
    assert register_recipe("mine", other) is get_recipe("mine")
    assert recipe_origin("mine") == {"kind": "module", "module": __name__}
    assert recipe_origin("gmvae") == {"kind": "builtin", "module": "pyromix.recipes.mixture"}


def test_shipped_recipes_register_through_the_public_function():
    # Every shipped recipe came in through register_recipe from its family module: checked in a
    # new process, where no other test's plugin is registered.
    script = (
        "import json; from pyromix.recipes import RECIPES, recipe_origin; "
        "print(json.dumps({name: recipe_origin(name) for name in RECIPES}))"
    )
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    origins = json.loads(found.stdout)
    assert list(origins)[:2] == ["vae", "iwae"] and len(origins) > 10
    for name, origin in origins.items():
        assert origin["kind"] == "builtin", (name, origin)
        assert origin["module"].startswith("pyromix.recipes."), (name, origin)


def test_recipe_from_a_file_trains_reloads_evaluates_samples_and_compares(tmp_path, capsys):
    plugin = tmp_path / "my_recipes.py"
    plugin.write_text(PLUGIN)
    out, vae = tmp_path / "student", tmp_path / "vae"
    assert main(["fit", f"{plugin}:student", "--out", str(out), *FAST]) == 0
    assert main(["fit", "vae", "--out", str(vae), *FAST]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "student" and metrics["test_elbo"] <= metrics["test_log_likelihood"]
    png(out / "samples.png"), png(out / "latents.png")
    saved = torch.load(out / "checkpoint.pt", weights_only=False)["recipe"]
    assert saved["origin"] == {"kind": "file", "path": str(plugin.resolve()), "attr": "student"}

    forget("student")  # as in a new process: the run imports the file again by itself
    capsys.readouterr()
    assert main(["evaluate", str(out), "--samples", "30"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["test_log_likelihood"] == pytest.approx(metrics["test_log_likelihood"], rel=1e-5)
    forget("student")
    assert main(["sample", str(out), "--n", "8", "--out", str(tmp_path / "s.png")]) == 0
    png(tmp_path / "s.png")
    forget("student")
    rows, table = tmp_path / "rows.json", tmp_path / "arviz.csv"
    argv = ["compare", str(out), str(vae), "--samples", "30", "--json", str(rows)]
    assert main([*argv, "--arviz", str(table)]) == 0
    assert "student" in capsys.readouterr().out
    # az.compare's elpd differences and SEs are pyromix compare's paired ones, as sums
    rows = {row["name"]: row for row in json.loads(rows.read_text())["rows"]}
    table = {row["run"]: row for row in csv.DictReader(table.open())}
    n = rows[str(vae)]["test_points"]
    for name, row in rows.items():
        assert float(table[name]["elpd_diff"]) == pytest.approx(-n * row["diff_to_best"], abs=1e-6)
        paired_se = n * row["diff_se"] * ((n - 1) / n) ** 0.5  # arviz: population variance
        assert float(table[name]["dse"]) == pytest.approx(paired_se, rel=1e-6, abs=1e-9)
    forget("student")
    assert load_run(out).name == "student" and recipe_origin("student")["kind"] == "file"

    forget("student")
    shutil.move(plugin, tmp_path / "moved.py")  # the recipe disappears
    for argv in (["evaluate", str(out)], ["compare", str(out), str(vae)]):
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert "recipe 'student' cannot be found (no such file" in err
        assert "make it importable: pass --plugin MODULE, fit it as FILE.py:NAME" in err


def test_plugin_module_and_entry_point(tmp_path, monkeypatch, capsys):
    (tmp_path / "my_plugin.py").write_text(
        PLUGIN + "\nfrom pyromix import register_recipe\nregister_recipe('student-t', student)\n"
    )
    # An installed distribution announcing the same recipe as an entry point.
    info = tmp_path / "my_dist-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-dist\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[pyromix.recipes]\nstudent-ep = my_plugin:student\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)

    assert main(["fit", "student-t", "--out", "a", *FAST]) == 2
    assert "unknown recipe 'student-t'" in capsys.readouterr().err
    assert main(["fit", "student-t", "--plugin", "my_plugin", "--out", "a", *FAST]) == 0
    assert main(["list"]) == 0
    assert "  student-ep       VAE with a Student-t prior" in capsys.readouterr().out
    assert main(["fit", "student-ep", "--out", "b", *FAST]) == 0
    assert recipe_origin("student-t") == {"kind": "module", "module": "my_plugin"}
    assert recipe_origin("student-ep") == {"kind": "entry_point", "value": "my_plugin:student"}
    forget("student-t"), forget("student-ep")
    assert main(["compare", "a", "b", "--samples", "30"]) == 0  # each re-imported from its origin

    forget("student-t")
    monkeypatch.syspath_prepend(str(tmp_path / "elsewhere"))
    (tmp_path / "my_plugin.py").unlink()
    assert main(["evaluate", "a"]) == 2
    err = capsys.readouterr().err
    assert "recipe 'student-t' cannot be found (cannot import 'my_plugin'" in err


def test_a_model_without_optional_methods_reports_what_it_skipped(tmp_path, capsys):
    plugin = tmp_path / "my_recipes.py"
    plugin.write_text(PLUGIN)
    out = tmp_path / "bare"
    assert main(["fit", f"{plugin}:bare", "--out", str(out), *FAST]) == 0
    skipped = json.loads((out / "metrics.json").read_text())["skipped"]
    assert set(skipped) == {"samples", "latents", "clusters", "reconstructions"}
    assert skipped["samples"] == "the model has no generate(n, component=, weights=)"
    assert skipped["latents"] == "the guide has no latent_mean(x)"
    assert sorted(p.name for p in out.glob("*.png")) == ["curves.png"]
    capsys.readouterr()
    assert main(["sample", str(out), "--out", str(tmp_path / "s.png")]) == 2
    assert "the bare run cannot sample: the model has no generate(" in capsys.readouterr().err


def test_python_registration_reloads_in_process_and_is_named_when_gone(tmp_path):
    namespace = {}
    exec(PLUGIN, namespace)
    register_recipe("student-py", namespace["student"])
    run = train_recipe("student-py", out=tmp_path, epochs=1, hidden=[8], limit=40, progress=False)
    assert load_run(tmp_path).name == run.name == "student-py"
    unregister_recipe("student-py")  # registered by this test module, which does not register it
    gone = r"recipe 'student-py' cannot be found \(registered by module '.*test_plugins', which"
    with pytest.raises(RecipeNotFoundError, match=gone):
        load_run(tmp_path)
    with pytest.raises(RecipeNotFoundError, match="no origin recorded"):
        resolve_recipe("gone", None)


def test_a_checkpoint_written_by_fit_alone_is_refused_in_one_line(tmp_path, capsys):
    run = prepare_recipe("vae", hidden=[8], limit=40)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        objective = get_recipe("vae").objective(run.args)
        checkpoint = tmp_path / name / "checkpoint.pt"
        fit(run.model, run.guide, run.dataset, objective, epochs=1, checkpoint=checkpoint,
            progress=False)
    capsys.readouterr()
    a, b, image = str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "s.png")
    for argv in (["compare", a, b], ["evaluate", a], ["sample", a, "--out", image]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "records no recipe name and arguments (was it written by fit(checkpoint=...) alone?)" in err
        assert len(err.strip().splitlines()) == 1 and "KeyError" not in err


def test_mixture_clustering_takes_a_registered_recipe():
    import numpy as np

    from pyromix.estimators import MixtureClustering, cluster_recipes
    from pyromix.recipes import enum_objective, mixture_recipe

    register_recipe("my-gmvae", mixture_recipe("EnumY under another name", enum_objective))
    assert "my-gmvae" in cluster_recipes()
    rng = np.random.default_rng(0)
    X = np.clip(np.repeat(np.eye(3), 20, 0) + 0.05 * rng.normal(size=(60, 3)), 0, 1)
    est = MixtureClustering("my-gmvae", n_clusters=3, latent_dim=2, hidden=(8,), epochs=2,
                            pretrain_epochs=1, likelihood="gaussian").fit(X)
    assert est.run_.name == "my-gmvae" and est.predict_proba(X).shape == (60, 3)
