"""Sphinx configuration of the pyromix docs site (``sphinx-build -W docs docs/_build``).

Sphinx rather than MkDocs: the docstrings are reST (``:mod:``/``:func:`` roles, literal
blocks, napoleon sections) that autodoc renders and cross-checks as they are, nitpicky mode turns
every unresolved reference into a warning and ``-W`` into a failure, and myst-nb renders the
committed notebooks' outputs (PNG figures, MathJax maths) without executing them or needing pandoc.
"""

import pkgutil
import shutil
import sys
from pathlib import Path

import pyromix

__all__: list[str] = []

ROOT = Path(__file__).resolve().parents[1]

# The notebooks live in tutorials/ (where the tests run them); the site reads copies.
_copies = Path(__file__).parent / "tutorials"
shutil.rmtree(_copies, ignore_errors=True)
_copies.mkdir()
for notebook in sorted((ROOT / "tutorials").glob("*.ipynb")):
    shutil.copy2(notebook, _copies / notebook.name)

project = "pyromix"
release = version = pyromix.__version__
extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinxarg.ext",
    "recipe_arguments_ext",  # the recipes' argument table, from their schemas (beside this file)
]
sys.path.insert(0, str(Path(__file__).parent))
exclude_patterns = ["_build", "_generated", "**/.ipynb_checkpoints"]
html_theme = "furo"
html_title = "pyromix"

# Notebooks are shown as committed (tutorials/execute.py ran them); never re-executed here.
nb_execution_mode = "off"
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

# The API reference: the three subpackages at the level users import from (their __all__), then
# every module of pyromix, found afresh at each build so a new module cannot be left out.
_modules = ["pyromix.models", "pyromix.guides", "pyromix.infer"] + [
    f"pyromix.{m.name}" for m in pkgutil.iter_modules(pyromix.__path__) if m.name != "infer"
]
(Path(__file__).parent / "api.rst").write_text(
    "API reference\n=============\n\n"
    "Every public name (a module's ``__all__``), generated from the docstrings.\n"
    "``pyromix.models`` and ``pyromix.guides`` are the Pyro programs; ``pyromix.infer`` holds the\n"
    "objectives, schedules and step hooks that Pyro lacks; the other modules are the\n"
    "infrastructure around them.\n\n"
    ".. autosummary::\n   :toctree: _autosummary\n\n" + "".join(f"   {m}\n" for m in _modules)
)
autosummary_generate = True
autosummary_ignore_module_all = False  # a module's public API is its __all__
autodoc_default_options = {"members": True, "undoc-members": True, "show-inheritance": True}
autodoc_typehints = "description"
autodoc_member_order = "bysource"
autodoc_inherit_docstrings = False  # not torch's "Define the computation performed at every call"
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# Every reference must resolve: a broken cross-reference is a warning, and CI's -W fails on it.
# There is no network in CI, so no intersphinx: references into these packages stay plain text.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(torch|pyro|numpy|np|scipy|sklearn|matplotlib|arviz|nn|dist|argparse)(\..*)?"),
    (r"py:.*", r"(collections\.abc|typing|pathlib|os|Path|PathLike|Sequence|Mapping)(\..*)?"),
    (r"py:.*", r"(Callable|Iterable|Iterator|Any|Literal|Tensor|Module|Figure|PyroModule)(\..*)?"),
]
napoleon_use_ivar = True  # "Attributes:" as fields: undoc-members documents them as objects
