"""The pieces of ``pyromix``'s parser: one-line errors, flag types from :mod:`pyromix.schema`
constraints, and ``pyromix fit``'s recipe flags, generated from the recipes' typed schemas.

Every argument of every registered recipe (:func:`pyromix.recipes.recipe_schema`) is a flag
``--name-with-dashes``; a ``bool`` one is ``--name`` / ``--no-name``. The recipe named on the
command line (a plugin's ``FILE.py:NAME`` too, loaded first) gives the flags its own type, range
and default, so a bad value is refused as the command is parsed, in one line; a flag of another
recipe is parsed as any recipe would take it, and refused by name when it reaches the run
(``unknown argument(s)``).
"""

from __future__ import annotations

import argparse
import difflib
from typing import Any, Sequence

from .schema import Argument, describe, parse_value

__all__ = ["OneLineParser", "flag_type", "add_recipe_flags", "recipe_overrides", "model_of"]

_NAMES = "recipe_arguments"  # where the namespace lists the flags' argument names


class OneLineParser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump), exit status 2, no abbreviated flags (so
    ``--epoch 1`` is refused rather than taken as ``--epochs``), and a close match suggested for
    a misspelt flag."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # noqa: D102 - argparse API
        self.exit(2, f"{self.prog}: error: {message}{_flag_suggestion(self, message)}\n")


def _flag_suggestion(parser: argparse.ArgumentParser, message: str) -> str:
    """"; did you mean --epochs?" for the first unrecognised flag that is close to a real one."""
    if not message.startswith("unrecognized arguments:"):
        return ""
    known = sorted(_option_strings(parser))
    for given in message.split(":", 1)[1].split():
        flag = given.split("=")[0]
        close = difflib.get_close_matches(flag, known, n=1) if flag.startswith("--") else []
        if close:
            return f"; did you mean {close[0]}?"
    return ""


def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string of ``parser`` and of its subcommands."""
    found = {s for action in parser._actions for s in action.option_strings}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _option_strings(sub)
    return found


def flag_type(*constraints: Any):
    """An argparse ``type`` for values that ``constraints`` accept (:mod:`pyromix.schema`), whose
    error says what is expected: ``--samples: expected an integer >= 1, got '0'``."""

    def parse(text: str) -> Any:
        try:
            return parse_value("value", text, *constraints)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {describe(constraints)}, got {text!r}"
            ) from None

    return parse


def _union(arguments: list[Argument]) -> Argument:
    """One argument that accepts what any of ``arguments`` accepts (a flag several recipes
    share with different ranges or choices)."""
    first = arguments[0]
    if any(not a.accepts for a in arguments):
        return first.replace(accepts=())
    merged: list = []
    for argument in arguments:
        merged += [c for c in argument.accepts if c not in merged]
    return first.replace(accepts=tuple(merged))


def _schemas(model: str | None) -> tuple[dict[str, Argument], dict[str, list[str]]]:
    """The flags' arguments (``model``'s own first) and the recipes that take each one."""
    from .recipes import RECIPES
    from .recipes.arguments import COMMON_ARGUMENTS, recipe_schema

    found: dict[str, list[Argument]] = {}
    takers: dict[str, list[str]] = {}
    for name, recipe in RECIPES.items():
        for key, argument in recipe_schema(recipe).items():
            found.setdefault(key, []).append(argument)
            takers.setdefault(key, []).append(name)
    own = recipe_schema(RECIPES[model]) if model in RECIPES else {}
    flags = {key: own.get(key) or _union(arguments) for key, arguments in found.items()}
    common = {a.name for a in COMMON_ARGUMENTS}
    for key in common:
        takers.pop(key, None)
    return flags, {key: [] if key in own else names for key, names in takers.items()}


def _type(argument: Argument):
    return flag_type(*argument.accepts) if argument.accepts else str


def _help(argument: Argument, takers: list[str], own: bool) -> str:
    text = argument.help
    shown = argument.accepts == (bool,) or _metavar(argument).startswith("{")  # by the flag
    if argument.accepts and not shown:
        text += f"; {argument.describe()}"
    if own:
        text += f" (default: {argument.default!r})"
    if argument.reference:
        text += f"; {argument.reference}"
    if takers:
        text += f" [{', '.join(takers)}]"
    return text.replace("%", "%%")  # argparse formats help with %


def add_recipe_flags(parser: argparse.ArgumentParser, model: str | None = None) -> None:
    """Add a flag to ``parser`` for every registered recipe's arguments; ``model``'s (a registered
    name) parse and show as that recipe declares them.

    Raises:
        ValueError: one line, for a recipe argument whose flag is one of ``fit``'s own.
    """
    flags, takers = _schemas(model)
    for name, argument in flags.items():
        flag = argument.flag
        if flag in parser._option_string_actions:
            raise ValueError(
                f"recipe: the argument {name!r} of {', '.join(takers.get(name, [])) or model!r} "
                f"has the flag {flag}, which is pyromix fit's own; rename the argument"
            )
        text = _help(argument, takers.get(name, []), own=model is not None and not takers.get(name))
        options: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": text}
        if argument.accepts == (bool,):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **options)
        else:
            parser.add_argument(flag, type=_type(argument), metavar=_metavar(argument), **options)
    parser.set_defaults(**{_NAMES: tuple(flags)})


def _metavar(argument: Argument) -> str:
    choices = [c for c in argument.accepts if hasattr(c, "values")]
    if len(choices) == len(argument.accepts) and choices:
        return "{" + ",".join(str(v) for c in choices for v in c.values) + "}"
    return argument.name.upper()


def recipe_overrides(ns: argparse.Namespace) -> dict[str, Any]:
    """The recipe arguments given on the command line, by name."""
    return {name: getattr(ns, name) for name in getattr(ns, _NAMES, ()) if hasattr(ns, name)}


def model_of(argv: Sequence[str]) -> str | None:
    """The recipe of ``pyromix fit MODEL ...``, registered now (``--plugin`` modules imported and
    a ``FILE.py:NAME`` loaded first), so that its own flags can be built; None otherwise."""
    from .recipes import RECIPES, available_recipes, get_recipe, load_plugin
    from .recipes import is_recipe_file, load_recipe_file

    if len(argv) < 2 or argv[0] != "fit" or argv[1].startswith("-"):
        return None
    for i, token in enumerate(argv):
        if token == "--plugin" and i + 1 < len(argv):
            load_plugin(argv[i + 1])
        elif token.startswith("--plugin="):
            load_plugin(token.split("=", 1)[1])
    model = argv[1]
    if is_recipe_file(model):
        return load_recipe_file(model)
    if model not in RECIPES and model in available_recipes():
        get_recipe(model)  # an entry point, loaded now
    return model if model in RECIPES else None
