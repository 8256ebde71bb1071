"""Typed arguments: a declarative schema and the one validation every module uses.

An :class:`Argument` names a value, its type, default, allowed range or choices, help text and
the paper behind its default. What a value may be is a tuple of *constraints*, any one of which
accepts it, as in scikit-learn's ``_parameter_constraints`` (``sklearn.utils._param_validation``):
an :class:`Interval` of integers or numbers, :class:`Options`, a :class:`ListOf` numbers, ``bool``,
``str``, or ``None``. From a recipe's schema come its CLI flags (:meth:`Argument.parse`), the check
of its arguments (:func:`validate`), the docs' table of defaults and ``metrics.json``'s arguments.

A bad value is one line naming the argument, what it may be and what it was::

    epochs: expected an integer >= 1, got 0

Example:
    >>> epochs = Argument("epochs", int, 200, "training epochs", low=1)
    >>> epochs.check(5), epochs.parse("7")
    (5, 7)
    >>> epochs.check(0)
    Traceback (most recent call last):
    ...
    ValueError: epochs: expected an integer >= 1, got 0
    >>> check_value("rate", 0.5, Interval(float, 0, 1, closed="left"))
    0.5
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import typing
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

__all__ = [
    "NO_HELP",
    "Interval",
    "Options",
    "ListOf",
    "Argument",
    "PROBABILITY",
    "check_value",
    "parse_value",
    "describe",
    "validate",
    "inferred_argument",
]

#: The help of an argument declared only by its default (a plugin's plain ``defaults`` dict).
NO_HELP = "(no help given)"
_CLOSED = {"both": "[]", "left": "[)", "right": "(]", "neither": "()"}


def _is_int(value: Any) -> bool:  # numpy's integers too, as counts from data often are
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _number(value: float) -> str:
    return f"{value:.3g}" if isinstance(value, float) and abs(value) >= 1e6 else str(value)


@dataclass(frozen=True)
class Interval:
    """Integers (``kind=int``) or finite numbers (``float``) between ``low`` and ``high`` (None:
    unbounded); ``closed`` says which ends belong: ``"both"``, ``"left"``, ``"right"`` or
    ``"neither"``. ``text`` replaces the generated description ("a count >= 0")."""

    kind: type
    low: float | None = None
    high: float | None = None
    closed: str = "both"
    text: str = ""

    def accepts(self, value: Any) -> bool:  # noqa: D102
        if not (_is_int(value) if self.kind is int else _is_number(value) and math.isfinite(value)):
            return False
        left, right = _CLOSED[self.closed]
        above = self.low is None or (value >= self.low if left == "[" else value > self.low)
        below = self.high is None or (value <= self.high if right == "]" else value < self.high)
        return above and below

    def describe(self) -> str:  # noqa: D102
        if self.text:
            return self.text
        what = "an integer" if self.kind is int else "a number"
        left, right = _CLOSED[self.closed]
        low = None if self.low is None else _number(self.low)
        high = None if self.high is None else _number(self.high)
        if low is not None and high is not None:
            return f"{what} in {left}{low}, {high}{right}"
        if low is not None:
            return f"{what} {'>=' if left == '[' else '>'} {low}"
        if high is not None:
            return f"{what} {'<=' if right == ']' else '<'} {high}"
        return what

    def parse(self, text: str) -> Any:  # noqa: D102
        return int(text) if self.kind is int else float(text)


@dataclass(frozen=True)
class Options:
    """One of ``values`` (strings, or other literals such as ``"auto"`` beside numbers)."""

    values: tuple

    def __init__(self, *values: Any) -> None:
        object.__setattr__(self, "values", tuple(values))

    def accepts(self, value: Any) -> bool:  # noqa: D102
        return any(type(value) is type(v) and value == v for v in self.values)

    def describe(self) -> str:  # noqa: D102
        names = [repr(v) for v in self.values]
        return names[0] if len(names) == 1 else f"one of {', '.join(names)}"

    def parse(self, text: str) -> Any:  # noqa: D102
        if text in self.values:
            return text
        raise ValueError(text)


@dataclass(frozen=True)
class ListOf:
    """A list of ``item`` values: non-empty, or exactly ``length`` long; ``increasing``: each
    larger than the one before (bounds such as ``[lo, hi]``). On the command line: ``256,256``."""

    item: Interval
    length: int | None = None
    increasing: bool = False

    def accepts(self, value: Any) -> bool:  # noqa: D102
        if not isinstance(value, (list, tuple)) or not value or not all(
            map(self.item.accepts, value)
        ):
            return False
        if self.length is not None and len(value) != self.length:
            return False
        return not self.increasing or all(a < b for a, b in zip(value, value[1:]))

    def describe(self) -> str:  # noqa: D102
        items = self.item.describe().replace("an integer", "integers")
        items = items.replace("a number", "numbers")
        size = f"a list of {self.length}" if self.length else "a non-empty list of"
        return f"{size} {items}{', increasing' if self.increasing else ''}"

    def parse(self, text: str) -> list:  # noqa: D102
        return [self.item.parse(part) for part in text.split(",")]


#: A probability below 1, such as a dropout rate.
PROBABILITY = Interval(float, 0, 1, closed="left", text="a probability in [0, 1)")


def _accepts(constraint: Any, value: Any) -> bool:
    if constraint is None:
        return value is None
    if constraint is bool:
        return isinstance(value, bool)
    if constraint is str:
        return isinstance(value, str)
    return constraint.accepts(value)


def _describe_one(constraint: Any) -> str:
    if constraint is None:
        return "None"
    if constraint is bool:
        return "True or False"
    if constraint is str:
        return "a string"
    return constraint.describe()


def describe(constraints: Iterable[Any]) -> str:
    """What ``constraints`` accept, in words: "an integer >= 1 or None"."""
    parts = [_describe_one(c) for c in constraints]
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} or {parts[-1]}"


def _parse_one(constraint: Any, text: str) -> Any:
    if constraint is None:
        if text.lower() == "none":
            return None
        raise ValueError(text)
    if constraint is bool:
        lowered = text.lower()
        if lowered in ("true", "yes", "1", "false", "no", "0"):
            return lowered in ("true", "yes", "1")
        raise ValueError(text)
    if constraint is str:
        return text
    return constraint.parse(text)


def check_value(name: str, value: Any, *constraints: Any) -> Any:
    """``value`` if one of ``constraints`` accepts it, else a one-line ValueError naming
    ``name``, what is expected and what was given.

    Example:
        >>> check_value("n", 3, Interval(int, 1))
        3
    """
    if any(_accepts(c, value) for c in constraints):
        return value
    raise ValueError(f"{name}: expected {describe(constraints)}, got {value!r}")


def parse_value(name: str, text: str, *constraints: Any) -> Any:
    """The value of the command-line string ``text`` that one of ``constraints`` accepts, else a
    one-line ValueError like :func:`check_value`'s.

    Example:
        >>> parse_value("hidden", "256,128", ListOf(Interval(int, 1)))
        [256, 128]
    """
    for constraint in constraints:
        try:
            value = _parse_one(constraint, text)
        except (ValueError, TypeError):
            continue
        if _accepts(constraint, value):
            return value
    raise ValueError(f"{name}: expected {describe(constraints)}, got {text!r}")


def _constraints_of(
    kind: Any, choices: tuple | None, low: Any, high: Any, closed: str, none: bool
) -> tuple:
    if choices is not None:
        found: tuple = (Options(*choices),)
    elif kind in (int, float):
        found = (Interval(kind, low, high, closed),)
    elif typing.get_origin(kind) is list:
        (item,) = typing.get_args(kind)
        found = (ListOf(Interval(item, low, high, closed)),)
    elif kind in (bool, str):
        found = (kind,)
    elif kind is Any:
        return ()  # anything goes: an argument known only by a default of no simple type
    else:
        raise ValueError(f"type: expected int, float, bool, str or list[int|float], got {kind!r}")
    return (*found, None) if none else found


@dataclass(frozen=True)
class Argument:
    """One typed argument of a recipe (or of any function that checks its inputs).

    Arguments:
        name: the key in a recipe's arguments; the CLI flag is ``--name-with-dashes``.
        type: ``int``, ``float``, ``bool``, ``str``, ``list[int]`` or ``list[float]``.
        default: the value when none is given (checked against the constraints).
        help: one line for ``--help`` and the docs.
        choices: the allowed values (strings), instead of a range.
        low, high, closed: the range of a number, or of a list's items, as :class:`Interval`.
        none: None is allowed too (its meaning belongs in ``help``).
        reference: the paper (authors, year, section) behind the default.
        accepts: explicit constraints, replacing those that the fields above give.
    """

    name: str
    type: Any
    default: Any
    help: str = NO_HELP
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    closed: str = "both"
    none: bool = False
    reference: str = ""
    accepts: tuple | None = None

    def __post_init__(self) -> None:
        if self.accepts is None:
            found = _constraints_of(
                self.type, self.choices, self.low, self.high, self.closed, self.none
            )
            object.__setattr__(self, "accepts", found)
        if self.accepts:
            check_value(f"{self.name} (its default)", self.default, *self.accepts)

    @property
    def flag(self) -> str:
        """The command-line flag, ``--latent-dim`` for ``latent_dim``."""
        return "--" + self.name.replace("_", "-")

    def describe(self) -> str:
        """What the argument accepts, in words ("any value" when it declares nothing)."""
        return describe(self.accepts) if self.accepts else "any value"

    def check(self, value: Any) -> Any:
        """``value``, or a one-line ValueError naming the argument."""
        return check_value(self.name, value, *self.accepts) if self.accepts else value

    def parse(self, text: str) -> Any:
        """The value of a command-line string, checked; ValueError in one line otherwise."""
        return parse_value(self.name, text, *(self.accepts or (str,)))

    def replace(self, **changes: Any) -> Argument:
        """This argument with other fields, e.g. a recipe's own default and its reference."""
        return dataclasses.replace(self, **changes)


def inferred_argument(name: str, default: Any) -> Argument:
    """An argument known only by its default (a plugin's plain ``Recipe.defaults``): its type is
    the default's, with no range, and its help :data:`NO_HELP`.

    Example:
        >>> inferred_argument("width", 3).describe(), inferred_argument("ws", [2, 3]).describe()
        ('an integer', 'a non-empty list of integers')
    """
    if isinstance(default, bool):
        kind: Any = bool
    elif isinstance(default, (int, float, str)):
        kind = type(default)
    elif isinstance(default, (list, tuple)) and default and all(map(_is_number, default)):
        kind = list[int] if all(map(_is_int, default)) else list[float]
    else:
        kind = Any  # None, or a structure: any value, as before schemas
    return Argument(name, kind, default)


def validate(schema: Mapping[str, Argument], values: Mapping[str, Any]) -> None:
    """Check every value of ``values`` that ``schema`` declares; the first bad one raises a
    one-line ValueError naming it."""
    for name, argument in schema.items():
        if name in values:
            argument.check(values[name])
