"""Typed recipe arguments: one validation, flags generated from the schema (a plugin's too), the
resolved arguments in metrics.json, and a run layer that names no recipe."""

import ast
import json
from pathlib import Path

import pytest

from pyromix.cli import build_parser, main
from pyromix.recipes import RECIPES
from pyromix.recipes.arguments import recipe_schema
from pyromix.runs import prepare_recipe
from pyromix.schema import Argument, Interval, ListOf, Options, check_value, inferred_argument

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--epochs", "1", "--hidden", "8", "--limit", "40", "--samples", "5", "--quiet"]


pytestmark = pytest.mark.usefixtures("shipped_recipes_only")


@pytest.mark.parametrize(
    "argument, value, message",
    [
        (Argument("n", int, 1, low=1), 0, "n: expected an integer >= 1, got 0"),
        (Argument("n", int, 1, low=1), True, "n: expected an integer >= 1, got True"),
        (Argument("n", int, 1, low=1), 2.0, "n: expected an integer >= 1, got 2.0"),
        (Argument("p", float, 0.5, low=0, high=1, closed="neither"), 1, "p: expected a number in (0, 1), got 1"),
        (Argument("p", float, 0.5, low=0), float("nan"), "p: expected a number >= 0, got nan"),
        (Argument("k", str, "a", choices=("a", "b")), "c", "k: expected one of 'a', 'b', got 'c'"),
        (Argument("m", int, None, low=2, none=True), 1, "m: expected an integer >= 2 or None, got 1"),
        (Argument("w", list[int], [1], low=1), [2, 0], "w: expected a non-empty list of integers >= 1, got [2, 0]"),
        (Argument("b", bool, False), 1, "b: expected True or False, got 1"),
        (
            Argument("r", list[float], None, accepts=(None, ListOf(Interval(float), 2, True))),
            [1.0, 0.0],
            "r: expected None or a list of 2 numbers, increasing, got [1.0, 0.0]",
        ),
    ],
)
def test_a_bad_value_is_one_line_naming_the_argument_the_expectation_and_the_value(
    argument, value, message
):
    with pytest.raises(ValueError) as error:
        argument.check(value)
    assert str(error.value) == message


def test_values_parse_from_the_command_line_as_their_type():
    assert Argument("n", int, 1, low=1, none=True).parse("3") == 3
    assert Argument("n", int, 1, low=1, none=True).parse("none") is None
    assert Argument("w", list[int], [1], low=1).parse("256,128") == [256, 128]
    labeled = recipe_schema(RECIPES["m2"])["labeled"]
    assert labeled.parse("10") == 10 and isinstance(labeled.parse("10"), int)
    assert labeled.parse("1.0") == 1.0 and isinstance(labeled.parse("1.0"), float)
    with pytest.raises(ValueError, match=r"labeled: expected a count >= 0 or a fraction in \(0, 1\], got '1.5'"):
        labeled.parse("1.5")
    assert check_value("x", "auto", Options("auto"), Interval(int, 2)) == "auto"


def test_a_default_outside_its_own_range_is_refused_where_it_is_declared():
    with pytest.raises(ValueError, match=r"n \(its default\): expected an integer >= 1, got 0"):
        Argument("n", int, 0, low=1)


def test_a_plain_default_declares_an_argument_typed_by_its_value():
    assert inferred_argument("k", 3).describe() == "an integer"
    assert inferred_argument("on", True).describe() == "True or False"
    assert inferred_argument("w", [0.5, 1]).describe() == "a non-empty list of numbers"
    assert inferred_argument("x", None).describe() == "any value"
    assert inferred_argument("k", 3).help == "(no help given)"


def test_shipped_recipes_declare_every_default_and_keep_plain_defaults():
    for name, recipe in RECIPES.items():
        schema = recipe_schema(recipe)
        for key, value in recipe.defaults.items():
            assert schema[key].default == value, (name, key)
            assert schema[key].help != "(no help given)", (name, key)  # shipped: all declared
    assert RECIPES["gan"].defaults["dropout"] == 0.1 and "clusters" in RECIPES["gmvae"].defaults
    # a recipe's own value of a common argument is the only one it takes
    with pytest.raises(ValueError, match="likelihood: expected 'none', got 'gaussian'"):
        prepare_recipe("gan", "digits", limit=40, likelihood="gaussian")
    with pytest.raises(ValueError, match=r"dropout: expected a probability in \[0, 1\), got 1.5"):
        prepare_recipe("gan", "digits", limit=40, dropout=1.5)


PLUGIN = '''
from pathlib import Path
from pyromix.models import VAE
from pyromix.guides import GaussianGuide
from pyromix.recipes import Recipe, build_encoder, build_likelihood, elbo_objective
from pyromix.schema import Argument

def build(args):
    Path({seen!r}).write_text(repr([args["my_width"], args["my_plain"]]))
    a = {{**args, "hidden": [args["my_width"]]}}
    return VAE(build_likelihood(a, 2), 2), GaussianGuide(build_encoder(a, 2))

narrow = Recipe(
    "a VAE whose width is its own argument",
    build=build,
    objective=elbo_objective,
    arguments=(Argument("my_width", int, 4, "width of my hidden layer", low=1),),
    defaults={{"my_plain": 3}},
)
'''


def test_a_plugin_recipes_own_typed_argument_is_a_flag_checked_and_reaching_the_builder(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    seen = tmp_path / "seen.txt"
    (tmp_path / "mine.py").write_text(PLUGIN.format(seen=str(seen)))
    assert main(["fit", "mine.py:narrow", "--help"]) == 0
    help_text = capsys.readouterr().out
    assert "--my-width" in help_text and "width of my hidden layer" in help_text
    assert "--my-plain" in help_text and "(no help given)" in help_text

    assert main(["fit", "mine.py:narrow", "--my-width", "0", "--out", "bad"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--my-width: expected an integer >= 1, got '0'" in err
    assert main(["fit", "mine.py:narrow", "--my-plain", "x", "--out", "bad"]) == 2
    assert "--my-plain: expected an integer, got 'x'" in capsys.readouterr().err
    assert not seen.exists() and not (tmp_path / "bad").exists()  # refused before any work

    assert main(["fit", "mine.py:narrow", "--my-width", "3", "--my-plain", "7", "--out", "run", *TINY]) == 0
    assert seen.read_text() == "[3, 7]"
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["arguments"]["my_width"] == 3 and metrics["arguments"]["my_plain"] == 7


def test_a_plain_clusters_default_is_typed_and_resolved_as_the_shipped_recipes_are():
    from pyromix import register_recipe
    from pyromix.recipes import Recipe

    m2 = RECIPES["m2"]
    register_recipe("my-m2", Recipe("M2", m2.build, m2.objective, defaults={"clusters": None}))
    assert prepare_recipe("my-m2", "digits", limit=40).args["clusters"] == 10  # the classes
    with pytest.raises(ValueError, match="clusters: expected an integer >= 1 or None, got 0"):
        prepare_recipe("my-m2", "digits", limit=40, clusters=0)


def test_metrics_record_the_resolved_typed_arguments(tmp_path):
    out = tmp_path / "run"
    argv = ["fit", "gmvae", "--out", str(out), "--pretrain-epochs", "0", "--latent-dim", "2"]
    assert main([*argv, *TINY]) == 0
    arguments = json.loads((out / "metrics.json").read_text())["arguments"]
    assert set(arguments) == set(recipe_schema(RECIPES["gmvae"]))
    assert arguments["clusters"] == 10 and arguments["likelihood"] == "gaussian"  # resolved
    assert arguments["hidden"] == [8] and arguments["latent_dim"] == 2 and arguments["limit"] == 40


def test_fit_flags_are_the_recipes_arguments():
    fit = next(
        a for a in build_parser()._actions if hasattr(a, "choices") and isinstance(a.choices, dict)
    ).choices["fit"]
    flags = {s for a in fit._actions for s in a.option_strings}
    for recipe in RECIPES.values():
        for argument in recipe_schema(recipe).values():
            assert argument.flag in flags, argument.flag
    for name in ("dropout", "disc_hidden", "std_min", "logvar_bounds", "sigmoid_mean", "logistic_components"):
        assert "--" + name.replace("_", "-") in flags


def _strings(path: Path) -> set[str]:
    """The string constants of a module's code, docstrings left out."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    }


def test_the_run_layer_and_the_cli_name_no_recipe():
    layer = [ROOT / "pyromix" / name for name in ("cli.py", "cli_flags.py")]
    layer += sorted((ROOT / "pyromix" / "runs").glob("*.py"))
    assert len(layer) >= 8
    for path in layer:
        named = _strings(path) & set(RECIPES)
        assert not named, f"{path.relative_to(ROOT)} names the recipes {sorted(named)}"
