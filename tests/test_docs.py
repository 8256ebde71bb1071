"""The docs site builds without a warning, and its CLI reference is generated from the parser.

The site is built as CI and ``sphinx-build -W docs docs/_build/html`` build it: nitpicky, so a
broken cross-reference or a docstring that does not parse is a warning, and any warning fails.
The CLI page is also built alone, in a small Sphinx project, once with pyromix's parser and once
with a flag added to it.
"""

import argparse
import io
import shutil
from pathlib import Path

import pytest
from sphinx.application import Sphinx
from sphinx.util.console import nocolor

import pyromix.cli
import pyromix.cli_flags

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def docs_source(tmp_path: Path) -> Path:
    """A copy of the docs and of the files they include, so the build (which writes its API
    stubs and notebook copies into its source folder) leaves the checkout untouched."""
    generated = shutil.ignore_patterns(
        "_build", "_autosummary", "_generated", "tutorials", "api.rst"
    )
    shutil.copytree(DOCS, tmp_path / "docs", ignore=generated)
    for name in ["README.md", "benchmarks/README.md", *(
        str(p.relative_to(ROOT)) for p in (ROOT / "tutorials").glob("*.ipynb")
    )]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tmp_path / name)
    return tmp_path / "docs"


def build_cli_page(tmp_path: Path) -> str:
    """The HTML of ``docs/cli.md`` built with the parser that ``pyromix.cli`` has now."""
    source = tmp_path / "source"
    source.mkdir(parents=True)
    (source / "conf.py").write_text('extensions = ["myst_nb", "sphinxarg.ext"]\n')
    (source / "index.md").write_text((DOCS / "cli.md").read_text())
    out = tmp_path / "html"
    app = Sphinx(source, source, out, tmp_path / "doctrees", "html", status=None, freshenv=True)
    app.build()
    return (out / "index.html").read_text()


def build_models_page(tmp_path: Path) -> str:
    """The HTML of ``docs/models.md`` with the argument table that the recipes have now."""
    source = tmp_path / "source"
    source.mkdir(parents=True)
    (source / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(DOCS)!r})\n"
        'extensions = ["myst_nb", "recipe_arguments_ext"]\nexclude_patterns = ["_generated"]\n'
    )
    (source / "index.md").write_text((DOCS / "models.md").read_text())
    out = tmp_path / "html"
    app = Sphinx(source, source, out, tmp_path / "doctrees", "html", status=None, freshenv=True)
    app.build()
    return (out / "index.html").read_text()


def test_docs_site_builds_without_warnings(tmp_path: Path) -> None:
    nocolor()  # plain text in the assertion message
    warnings = io.StringIO()
    source = docs_source(tmp_path / "checkout")
    app = Sphinx(source, source, tmp_path / "html", tmp_path / "doctrees", "html", status=None,
                 warning=warnings, freshenv=True, keep_going=True)
    app.build()
    assert not warnings.getvalue(), warnings.getvalue()
    assert (tmp_path / "html/tutorials/01_vae.html").is_file()  # notebooks, as committed


def options(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string of a parser and its subcommands."""
    found = {s for action in parser._actions for s in action.option_strings}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= options(sub)
    return found


def test_cli_page_lists_every_flag_of_the_parser(tmp_path: Path) -> None:
    html = build_cli_page(tmp_path)
    flags = options(pyromix.cli.build_parser())
    assert {"--pseudo-init", "--resume", "--categories"} <= flags  # the parser is the real one
    missing = sorted(f for f in flags - {"-h", "--help"} if f not in html)  # help is implied
    assert not missing, f"docs/cli.md does not show {missing}"


def test_adding_a_flag_changes_the_cli_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    real = pyromix.cli.build_parser

    def with_new_flag() -> argparse.ArgumentParser:
        parser = real()
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        commands.choices["fit"].add_argument("--brand-new-flag", help="added by the test")
        return parser

    assert "--brand-new-flag" not in build_cli_page(tmp_path / "before")
    monkeypatch.setattr(pyromix.cli, "build_parser", with_new_flag)
    html = build_cli_page(tmp_path / "after")
    assert "--brand-new-flag" in html and "added by the test" in html


def test_a_schema_change_changes_the_cli_page_and_the_defaults_table(tmp_path, monkeypatch):
    from dataclasses import replace

    from pyromix.recipes import RECIPES
    from pyromix.schema import Argument

    before_cli = build_cli_page(tmp_path / "cli-before")
    before_table = build_models_page(tmp_path / "models-before")
    assert "--flows" in before_table and "--brand-new-arg" not in before_cli + before_table
    new = Argument("brand_new_arg", int, 7, "added to the schema by the test", low=1)
    flows = replace(RECIPES["vae"].arguments[-1], default=5, reference="a test reference")
    vae = replace(RECIPES["vae"], arguments=(*RECIPES["vae"].arguments[:-1], flows, new))
    monkeypatch.setitem(RECIPES, "vae", vae)
    assert vae.defaults["flows"] == 5 and pyromix.cli_flags._schemas("vae")[0]["flows"].default == 5
    cli = build_cli_page(tmp_path / "cli-after")
    table = build_models_page(tmp_path / "models-after")
    for html in (cli, table):
        assert "--brand-new-arg" in html and "added to the schema by the test" in html
    assert "a test reference" in table and "a test reference" not in before_table
