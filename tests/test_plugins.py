"""Recipes of one's own: registered in Python, from FILE.py:NAME, --plugin MODULE or an entry
point; every run remembers where its recipe came from and reloads it like a shipped one."""

import json
import shutil
import sys
import textwrap

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
from pyromix.recipes import registry
from pyromix.runs import load_run, train_recipe
from pyromix.train import fit

FAST = ["--epochs", "2", "--samples", "30", "--hidden", "16", "--limit", "60", "--quiet"]

# A user's model, written as a Pyro program from pyromix's public parts: z ~ Student-t(3),
# x | z from the recipe's likelihood, a Gaussian guide.
PLUGIN = textwrap.dedent(
    '''
    import pyro
    import pyro.distributions as dist
    import torch
    from pyro.nn import PyroModule

    from pyromix.recipes import Recipe, build_encoder, build_likelihood, elbo_objective

    class StudentTVAE(PyroModule):
        """z ~ StudentT(3, 0, 1)^d, x | z ~ p(x | z)."""

        def __init__(self, likelihood, d):
            super().__init__()
            self.likelihood, self.d = likelihood, d

        def prior(self, like):
            return dist.StudentT(3.0, like.new_zeros(self.d), 1.0).to_event(1)

        def forward(self, x, y=None):
            with pyro.plate("data", x.shape[0]):
                z = pyro.sample("z", self.prior(x))
                pyro.sample("x", self.likelihood(z), obs=x)

        @torch.no_grad()
        def generate(self, n, *, component=None, weights=None):
            return self.likelihood.mean(self.prior(torch.zeros(1)).sample((n,)))

    class Guide(PyroModule):
        def __init__(self, encoder):
            super().__init__()
            self.encoder = encoder

        def forward(self, x, y=None):
            with pyro.plate("data", x.shape[0]):
                pyro.sample("z", self.encoder(x))

        @torch.no_grad()
        def latent_mean(self, x):
            return self.encoder(x).mean

    def build(args):
        d = args["latent_dim"]
        return StudentTVAE(build_likelihood(args, d), d), Guide(build_encoder(args, d))

    student = Recipe("VAE with a Student-t prior", build=build, objective=elbo_objective)
    '''
)


@pytest.fixture(autouse=True)
def _clean_registry():
    """Each test sees the shipped recipes only and leaves them so."""
    recipes, origins = dict(RECIPES), dict(registry._ORIGINS)
    modules = set(sys.modules)
    yield
    RECIPES.clear(), RECIPES.update(recipes)
    registry._ORIGINS.clear(), registry._ORIGINS.update(origins)
    for name in set(sys.modules) - modules:
        if name.startswith(("pyromix_plugin_", "my_plugin", "my_dist")):
            del sys.modules[name]


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
    # Every shipped recipe came in through register_recipe from its family module.
    assert list(RECIPES)[:2] == ["vae", "iwae"]
    for name in RECIPES:
        origin = recipe_origin(name)
        assert origin["kind"] == "builtin" and origin["module"].startswith("pyromix.recipes.")


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
    assert main(["compare", str(out), str(vae), "--samples", "30"]) == 0
    table = capsys.readouterr().out
    assert "student" in table and "vae" in table
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
    run = train_recipe("vae", epochs=1, hidden=[8], limit=40, progress=False)
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
