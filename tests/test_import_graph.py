"""The import graph of pyromix has no cycle.

What is checked: the imports a module runs when it is imported (its top-level statements,
class bodies and ``if``/``try`` blocks included; ``if TYPE_CHECKING:`` blocks and function
bodies left out, so an import deferred into a function is allowed), between the modules of
``pyromix`` and of ``pyromix.models`` / ``pyromix.guides``, found with :mod:`pkgutil` and read
with :mod:`ast` (nothing is imported). Relative imports are resolved against the importing
module's package; ``from P import name`` is an edge to ``P.name`` when that is a module, else to
``P``. An import of ``P.Q`` is an edge to ``P.Q`` alone: the package ``P``'s ``__init__`` that
Python runs first is not counted, since a package re-exporting its own modules is the normal
pattern, not a cycle.
"""

from __future__ import annotations

import ast
import pkgutil
from pathlib import Path

import pyromix

ROOT = Path(pyromix.__file__).resolve().parents[1]
PACKAGES = {"pyromix": ROOT / "pyromix", "pyromix.models": ROOT / "models", "pyromix.guides": ROOT / "guides"}


def modules_of(name: str, folder: Path) -> dict[str, tuple[Path, bool]]:
    """Every module under the package ``name`` in ``folder``: name -> (file, is a package)."""
    found = {name: (folder / "__init__.py", True)}
    for info in pkgutil.iter_modules([str(folder)]):
        full = f"{name}.{info.name}"
        if info.ispkg:
            found.update(modules_of(full, folder / info.name))
        else:
            found[full] = (folder / f"{info.name}.py", False)
    return found


def _executed(body: list[ast.stmt]):
    """The import statements run at import time, in ``body`` and its blocks."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if name != "TYPE_CHECKING":
                yield from _executed(node.body)
            yield from _executed(node.orelse)
        elif isinstance(node, (ast.Try, ast.With, ast.ClassDef, ast.For, ast.While)):
            for block in ("body", "orelse", "finalbody"):
                yield from _executed(getattr(node, block, []))
            for handler in getattr(node, "handlers", []):
                yield from _executed(handler.body)


def import_graph(modules: dict[str, tuple[Path, bool]]) -> dict[str, set[str]]:
    """module -> the modules of ``modules`` it imports at import time."""

    def known(target: str) -> str | None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        edges = set()
        for node in _executed(ast.parse(path.read_text(), str(path)).body):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                source = ".".join(part for part in (base if node.level else "", node.module or "") if part)
                targets = [
                    f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                    for alias in node.names
                ]
            edges |= {t for t in map(known, targets) if t is not None and t != name}
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path that returns to its start) per strongly connected component of more
    than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v), on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(_path_within(graph, set(component)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _path_within(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A cycle through the first module of ``component``, by breadth-first search."""
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & component):
            if w == start:
                return paths[v] + [start]
            if w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    raise AssertionError("a strongly connected component without a cycle")


def test_pyromix_has_no_import_cycle():
    modules = {}
    for name, folder in PACKAGES.items():
        modules.update(modules_of(name, folder))
    graph = import_graph(modules)
    assert "pyromix.train.fit" in graph and "pyromix.capture" in graph["pyromix.train.fit"]
    found = [" -> ".join(cycle) for cycle in cycles(graph)]
    assert not found, "import cycles: " + "; ".join(found)


def test_a_cycle_is_found_and_named_through_relative_imports(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from .sub import b\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("import os\nclass K:\n    from ..c import x\n")
    (package / "c.py").write_text("try:\n    from .a import y\nexcept ImportError:\n    pass\n")
    (package / "d.py").write_text("def f():\n    from . import a\nfrom typing import TYPE_CHECKING\n"
                                  "if TYPE_CHECKING:\n    from .a import z\n")
    graph = import_graph(modules_of("pkg", package))
    assert graph["pkg.d"] == set()  # deferred and type-checking imports do not count
    assert cycles(graph) == [["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]]
    (package / "c.py").write_text("x = 1\n")
    assert cycles(import_graph(modules_of("pkg", package))) == []
