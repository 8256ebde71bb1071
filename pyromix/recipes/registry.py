"""The recipe registry: one name -> :class:`Recipe` table that the CLI, runs and estimators read.

Shipped recipes and plugins register the same way, with :func:`register_recipe`. Each entry
remembers where it came from (its *origin*), which a run stores so that a new process can import
the recipe again before rebuilding the model:

- ``{"kind": "builtin", "module": "pyromix.recipes.vae"}``: shipped with pyromix;
- ``{"kind": "module", "module": "my_package.recipes"}``: registered when that module was
  imported (``--plugin MODULE``, or any ``import`` before training);
- ``{"kind": "file", "path": "/abs/my_recipes.py", "attr": "NAME"}``: ``pyromix fit
  my_recipes.py:NAME``;
- ``{"kind": "entry_point", "value": "my_package.recipes:NAME"}``: an entry point in the group
  ``pyromix.recipes`` of an installed distribution, whose name is the recipe's name.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import importlib.metadata
import importlib.util
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from pyro.infer import ELBO
from torch import nn

from ..data import Dataset
from ..infer.schedules import KLWarmup
from ..schema import Argument

__all__ = [
    "Recipe",
    "kl_warmup",
    "RECIPES",
    "ENTRY_POINT_GROUP",
    "RecipeNotFoundError",
    "register_recipe",
    "unregister_recipe",
    "is_recipe_file",
    "get_recipe",
    "recipe_origin",
    "available_recipes",
    "load_plugin",
    "load_recipe_file",
    "resolve_recipe",
    "build_programs",
]

ENTRY_POINT_GROUP = "pyromix.recipes"
BUILTIN_PACKAGE = "pyromix.recipes"
HOW_TO_IMPORT = (
    "make it importable: pass --plugin MODULE, fit it as FILE.py:NAME, or declare an entry point "
    f"in the group {ENTRY_POINT_GROUP!r}"
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def kl_warmup(args: dict) -> KLWarmup:
    """The KL weight: a linear warm-up to ``beta`` over ``warmup`` epochs (a recipe's
    ``kl_weight`` by default)."""
    return KLWarmup(args["warmup"], args["beta"])


@dataclass(frozen=True)
class Recipe:
    """How to build and train one named model.

    Attributes:
        description: one line for ``pyromix list``.
        build: ``args -> (model, guide)``; ``args`` holds ``data_dim`` and ``image_shape``.
        objective: ``args -> ELBO``.
        arguments: the recipe's typed arguments (:class:`pyromix.schema.Argument`): its own, and
            common ones (:data:`pyromix.recipes.COMMON_ARGUMENTS`) with its own default; they
            give its CLI flags, checks and docs (:func:`pyromix.recipes.recipe_schema`).
        defaults: plain defaults, as a plugin may give them instead: a common argument's new
            default, or a new argument typed by its default. After construction it holds every
            default the recipe sets, those of ``arguments`` included (which win over a plain
            default of the same name); only names of the schema may be passed.
        check: ``args -> None``, raising ValueError for settings that are wrong together
            (before the data is read), e.g. the implicit prior's alternation.
        resolve: ``(args, dataset) -> None``, fills the recipe's own arguments that depend on
            the data and checks them against it (``clusters`` and ``levels`` are resolved for
            every recipe that has them, :data:`pyromix.recipes.SHARED_ARGUMENTS`).
        kl_weight: ``args -> callable(epoch)``, the KL weight (default: warm-up to ``beta`` over
            ``warmup`` epochs).
        kl_weighted: whether warm-up and beta apply (the IWAE bound has no KL term to weight).
        schedules: ``(model, guide, args) -> [callable(epoch)]`` run by the trainer each epoch.
        initialize: ``(model, guide, dataset, args) -> None`` run once before training (not on
            resume), e.g. autoencoder pretraining.
        step_hooks: ``(model, guide, dataset, args) -> [StepHook]`` called by the trainer after
            every optimiser step, e.g. the implicit prior's discriminator steps; each also has
            ``parameters()``, those it trains, which the objective leaves without a gradient.
        loss_terms: ``(model, guide, dataset, args) -> [LossTerm]``, extra terms of the loss
            (:func:`pyromix.train.fit`'s ``loss_terms``), e.g. M2's classification term.
        optimizer: ``args -> (parameters -> torch optimiser)``, or None for Adam at ``lr``.
        restore_best: end training with the weights of the best validation epoch; False where
            the validation objective does not rank epochs (a GAN's generator loss).

    Example:
        >>> from pyro.infer import Trace_ELBO
        >>> from pyromix.recipes import build_encoder, build_likelihood
        >>> from pyromix.models import VAE
        >>> from pyromix.guides import GaussianGuide
        >>> my_vae = Recipe(
        ...     "a VAE trained on the Monte-Carlo ELBO",
        ...     build=lambda a: (VAE(build_likelihood(a, a["latent_dim"]), a["latent_dim"]),
        ...                      GaussianGuide(build_encoder(a, a["latent_dim"]))),
        ...     objective=lambda a: Trace_ELBO(),
        ... )
    """

    description: str
    build: Callable[[dict], tuple[nn.Module, nn.Module]]
    objective: Callable[[dict], ELBO]
    defaults: dict[str, Any] = field(default_factory=dict)
    arguments: tuple[Argument, ...] = ()
    check: Callable[[dict], None] | None = None
    resolve: Callable[[dict, Dataset], None] | None = None
    kl_weight: Callable[[dict], Callable[[int], float]] = kl_warmup
    kl_weighted: bool = True
    schedules: Callable[[nn.Module, nn.Module, dict], list] = lambda model, guide, args: []
    initialize: Callable[[nn.Module, nn.Module, Dataset, dict], None] | None = None
    step_hooks: Callable[[nn.Module, nn.Module, Dataset, dict], list] = (
        lambda model, guide, data, args: []
    )
    loss_terms: Callable[[nn.Module, nn.Module, Dataset, dict], list] = (
        lambda model, guide, data, args: []
    )
    optimizer: Callable[[dict], Callable] | None = None
    restore_best: bool = True

    def __post_init__(self) -> None:
        declared = {a.name: a.default for a in self.arguments}
        # a declared argument's default wins, so that replacing ``arguments`` replaces them
        object.__setattr__(self, "defaults", {**self.defaults, **declared})



#: Every registered recipe by name, which ``pyromix fit NAME`` and :func:`get_recipe` look up.
RECIPES: dict[str, Recipe] = {}
_ORIGINS: dict[str, dict[str, Any]] = {}
# Set while a plugin file or entry point is being loaded: what its registrations record.
_LOADING: list[dict[str, Any]] = []


class RecipeNotFoundError(ValueError):
    """A recipe name that is neither registered nor importable from where its run says."""


def _caller_module() -> str:
    frame = sys._getframe(2)  # the caller of register_recipe
    return frame.f_globals.get("__name__", "__main__")


def register_recipe(name: str, recipe: Recipe) -> Recipe:
    """Register ``recipe`` under ``name`` for the CLI, runs, comparisons and estimators.

    Registering a name again replaces the entry (re-running a notebook cell), except for the
    shipped recipes, which cannot be replaced. The entry records its origin (see the module
    docstring): the registering module, or the file / entry point being loaded.

    Arguments:
        name: letters, digits and ``_ . + -``, starting with a letter or digit.
        recipe: the :class:`Recipe`.

    Returns:
        ``recipe``, so the call can end a definition.

    Example:
        >>> from pyromix import register_recipe
        >>> from pyromix.recipes import RECIPES
        >>> register_recipe("my-vae", RECIPES["vae"]) is RECIPES["my-vae"]
        True
        >>> recipe_origin("my-vae")["kind"], recipe_origin("vae")["kind"]
        ('module', 'builtin')
        >>> unregister_recipe("my-vae")
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"name: expected letters, digits and _.+- starting with a letter or digit, got {name!r}"
        )
    if not isinstance(recipe, Recipe):
        raise ValueError(f"recipe: expected a pyromix.recipes.Recipe, got {type(recipe).__name__}")
    if name in RECIPES and _ORIGINS[name]["kind"] == "builtin" and RECIPES[name] is not recipe:
        raise ValueError(f"name: {name!r} is a shipped recipe; register yours under another name")
    if _LOADING:
        origin = dict(_LOADING[-1])
    else:
        module = _caller_module()
        # The shipped families are the modules of this package (this one's doctest is not).
        shipped = module.startswith(BUILTIN_PACKAGE + ".") and module != __name__
        origin = {"kind": "builtin" if shipped else "module", "module": module}
    return _register(name, recipe, origin)


def _register(name: str, recipe: Recipe, origin: dict[str, Any]) -> Recipe:
    RECIPES[name] = recipe
    _ORIGINS[name] = origin
    return recipe


def unregister_recipe(name: str) -> None:
    """Remove a recipe registered by :func:`register_recipe` (not a shipped one)."""
    if recipe_origin(name)["kind"] == "builtin":
        raise ValueError(f"name: {name!r} is a shipped recipe and cannot be removed")
    del RECIPES[name], _ORIGINS[name]


def recipe_origin(name: str) -> dict[str, Any]:
    """Where the registered recipe ``name`` came from (see the module docstring)."""
    get_recipe(name)
    return dict(_ORIGINS[name])


@contextlib.contextmanager
def _loading(origin: dict[str, Any]) -> Iterator[None]:
    _LOADING.append(origin)
    try:
        yield
    finally:
        _LOADING.pop()


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _load_entry_point(ep: importlib.metadata.EntryPoint) -> Recipe:
    try:
        recipe = ep.load()
    except ImportError as e:
        raise RecipeNotFoundError(
            f"recipe: entry point {ep.value!r} fails to import ({e})"
        ) from None
    except Exception as e:
        raise _broken_plugin(f"entry point {ep.value!r}", e) from None
    if not isinstance(recipe, Recipe):
        raise RecipeNotFoundError(
            f"recipe: entry point {ep.name!r} = {ep.value!r} in {ENTRY_POINT_GROUP!r} is a "
            f"{type(recipe).__name__}, not a pyromix.recipes.Recipe"
        )
    register_recipe(ep.name, recipe)  # checks the name and shipped names
    return _register(ep.name, recipe, {"kind": "entry_point", "value": ep.value})


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``: registered, or an entry point of that name (loaded now).

    Raises:
        RecipeNotFoundError: (a ValueError) listing the valid names.
    """
    if name in RECIPES:
        return RECIPES[name]
    ep = _entry_points().get(name)
    if ep is not None:
        return _load_entry_point(ep)
    names = available_recipes()
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise RecipeNotFoundError(
        f"model: unknown recipe {name!r}; {hint}choose from {', '.join(names)} "
        f"(a recipe of your own: {HOW_TO_IMPORT})"
    )


def available_recipes() -> list[str]:
    """Every registered recipe's name, then those of entry points not loaded yet."""
    return [*RECIPES, *(name for name in _entry_points() if name not in RECIPES)]


def load_plugin(module: str) -> list[str]:
    """Import ``module`` so that the recipes it registers are available.

    Returns:
        The names it registered (their origin is ``{"kind": "module", "module": module}``).
    """
    before = set(RECIPES)
    with _working_folder_importable():
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise RecipeNotFoundError(f"plugin: cannot import {module!r} ({e})") from None
        except Exception as e:  # the module itself is broken: say which file, and how
            raise _broken_plugin(_module_file(module), e) from None
    return [name for name in RECIPES if name not in before]


@contextlib.contextmanager
def _working_folder_importable() -> Iterator[None]:
    """Let a plugin module in the working folder be imported, as ``python -m`` would: the
    ``pyromix`` command's own ``sys.path`` starts at its script's folder, not the working one."""
    here = os.getcwd()
    added = here not in sys.path
    if added:
        sys.path.insert(0, here)
    try:
        yield
    finally:
        if added and here in sys.path:
            sys.path.remove(here)


def _module_file(module: str) -> str:
    """The file of an importable ``module``, or its name where it cannot be found."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    return spec.origin if spec is not None and spec.origin else module


def _broken_plugin(where: str, error: Exception) -> RecipeNotFoundError:
    """One line for a plugin that fails while it is imported: a syntax error with its line, or
    the exception its code raised."""
    if isinstance(error, SyntaxError):
        line = f", line {error.lineno}" if error.lineno else ""
        return RecipeNotFoundError(
            f"plugin: {error.filename or where}{line}: {error.msg}; expected valid Python that "
            "registers recipes"
        )
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return RecipeNotFoundError(
        f"plugin: {where} raised {type(error).__name__}({text!r}) while being imported; "
        "expected it to define or register recipes without failing"
    )


def build_programs(name: str, args: dict[str, Any]) -> tuple[nn.Module, nn.Module]:
    """``RECIPES[name].build(args)``, checked to be ``(model, guide)``, two ``nn.Module``s.

    Raises:
        RecipeNotFoundError: one line naming the recipe, where it came from and what its
            build returned instead.
    """
    built = get_recipe(name).build(args)
    if isinstance(built, tuple) and len(built) == 2:
        if all(isinstance(program, nn.Module) for program in built):
            return built
        kinds = ", ".join(type(program).__name__ for program in built)
        got = f"a pair of {kinds}"
    else:
        got = "None" if built is None else f"a {type(built).__name__}"
    origin = _ORIGINS.get(name, {})
    where = origin.get("path") or origin.get("module") or origin.get("value") or "?"
    raise RecipeNotFoundError(
        f"recipe: {name!r} (from {where}): its build returned {got}; expected (model, guide), "
        "two torch.nn.Module Pyro programs"
    )


def _split_spec(spec: str) -> tuple[Path, str]:
    path, sep, attr = str(spec).rpartition(":")
    if not sep or not path.endswith(".py") or not attr.isidentifier():
        raise ValueError(f"recipe: expected FILE.py:NAME, got {spec!r}")
    return Path(path).resolve(), attr


def is_recipe_file(spec: str) -> bool:
    """Whether ``spec`` has the form ``FILE.py:NAME``."""
    path, sep, _ = str(spec).rpartition(":")
    return bool(sep) and path.endswith(".py")


def load_recipe_file(spec: str) -> str:
    """Run ``FILE.py`` and register its ``Recipe`` called ``NAME`` under that name.

    The file may register further recipes itself; all record the file as their origin, so a run
    reloads them from the same path.

    Arguments:
        spec: ``"path/to/file.py:NAME"``.

    Returns:
        ``NAME``.
    """
    path, attr = _split_spec(spec)
    if not path.is_file():
        raise RecipeNotFoundError(f"recipe: no such file {str(path)!r} (from {spec!r})")
    module_name = f"pyromix_plugin_{path.stem}_{abs(hash(str(path)))}"
    origin = {"kind": "file", "path": str(path), "attr": attr}
    with _loading(origin):
        source = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(source)
        sys.modules[module_name] = module  # dataclasses and pickling look modules up here
        try:
            source.loader.exec_module(module)
        except ImportError as e:
            del sys.modules[module_name]
            raise RecipeNotFoundError(f"plugin: {str(path)!r} cannot import ({e})") from None
        except Exception as e:
            del sys.modules[module_name]
            raise _broken_plugin(str(path), e) from None
        recipe = getattr(module, attr, None)
        if not isinstance(recipe, Recipe):
            raise RecipeNotFoundError(
                f"recipe: {str(path)!r} has no Recipe called {attr!r} (found "
                f"{type(recipe).__name__})"
            )
        if RECIPES.get(attr) is not recipe:
            register_recipe(attr, recipe)
    return attr


def resolve_recipe(name: str, origin: dict[str, Any] | None = None) -> Recipe:
    """The recipe ``name`` of a saved run, importing it from its recorded ``origin`` if needed.

    Looks in the registry, then imports the origin's module, file or entry point, then any entry
    point called ``name``.

    Raises:
        RecipeNotFoundError: one line naming the recipe, where it came from and how to make it
            importable.
    """
    if name in RECIPES:
        return RECIPES[name]
    origin = origin or {}
    kind, reason = origin.get("kind"), "no origin recorded"
    try:
        if kind in ("builtin", "module") and origin.get("module") not in (None, "__main__"):
            load_plugin(origin["module"])
        elif kind == "file":
            load_recipe_file(f"{origin['path']}:{origin['attr']}")
        if name in RECIPES:
            return RECIPES[name]
        if kind in ("builtin", "module"):
            reason = f"registered by module {origin.get('module')!r}"
            if origin.get("module") != "__main__":
                reason += ", which no longer registers it"
        elif kind == "file":
            reason = f"from {origin['path']}:{origin['attr']}"
        elif kind == "entry_point":
            reason = f"entry point {origin.get('value')!r}, not installed now"
        return get_recipe(name)
    except RecipeNotFoundError as e:
        if kind is not None and "unknown recipe" not in str(e):
            reason = str(e).removeprefix("recipe: ").removeprefix("plugin: ")
    raise RecipeNotFoundError(
        f"recipe: the run's recipe {name!r} cannot be found ({reason}); {HOW_TO_IMPORT}"
    )
