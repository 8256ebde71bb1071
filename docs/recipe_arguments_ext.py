"""Sphinx extension: ``_generated/recipe_arguments.md``, the table of every recipe's arguments,
written from the recipes' typed schemas (:func:`pyromix.recipes.arguments.arguments_table`) at
the start of each build, so the docs show the defaults the code has."""

from pathlib import Path

__all__ = ["TABLE", "write_table", "setup"]

TABLE = Path("_generated") / "recipe_arguments.md"


def write_table(app) -> None:
    """Write the table into the source folder, where ``models.md`` includes it."""
    from pyromix.recipes import RECIPES
    from pyromix.recipes.arguments import arguments_table

    path = Path(app.srcdir) / TABLE
    path.parent.mkdir(exist_ok=True)
    path.write_text(arguments_table(RECIPES) + "\n")


def setup(app) -> dict:
    app.connect("builder-inited", write_table)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
