"""The tutorials run, and their committed form carries the outputs of a full-mode run.

Every notebook is executed in fast mode (PYROMIX_FAST=1) through ``tutorials/execute.py``; a cell
that raises fails, and the cells' own asserts check what the text claims. The committed files
are read as they are: they must hold full-mode outputs (``tutorials/execute.py`` writes them), so
a reader on the web sees the figures and numbers the prose discusses.
"""

import ast
import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

from pyromix.diagnostics import FAILURES

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
_spec = importlib.util.spec_from_file_location("tutorials_execute", TUTORIALS / "execute.py")
execute_py = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(execute_py)

NOTEBOOKS = execute_py.notebooks()
IDS = [p.name for p in NOTEBOOKS]

# A code cell that prints, shows or displays something, or ends in a bare expression, must have
# output; one that only defines names or trains silently may have none.
_SPEAKS = re.compile(r"\b(print|show|display|plt\.show)\(")
# Prose that points at a figure: the notebook must then contain at least one image.
_FIGURE_WORDS = re.compile(r"\b(figure|plot|scatter|grid|Fig\.)", re.I)


def shows_figure(source: str) -> bool:
    """Whether a cell calls the notebooks' ``show(path)`` or ``display(Image(...))`` itself.

    Calls inside a function definition (the ``show`` helper's own body) do not count.
    """
    tree = ast.parse(source)
    defs = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    inside = {id(n) for d in defs for n in ast.walk(d)}
    calls = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and id(n) not in inside
    ]
    for call in calls:
        image_arg = any(isinstance(a, ast.Call) and getattr(a.func, "id", "") == "Image"
                        for a in call.args)
        if call.func.id == "show" or (call.func.id == "display" and image_arg):
            return True
    return False


def should_speak(source: str) -> bool:
    """Whether a code cell's source, run, must leave output in the notebook."""
    return bool(_SPEAKS.search(source))


def problems(nb: nbformat.NotebookNode) -> list[str]:
    """What is missing from a notebook's committed outputs, one line per problem."""
    found = []
    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    for i, cell in code:
        kinds = {o.output_type for o in cell.outputs}
        if "error" in kinds:
            found.append(f"cell {i} holds an error output")
        if should_speak(cell.source) and not cell.outputs:
            found.append(f"cell {i} prints or shows something but has no output")
        if cell.execution_count is None and cell.source.strip():
            found.append(f"cell {i} was never executed")
        images = [o for o in cell.outputs if "image/png" in o.get("data", {})]
        if shows_figure(cell.source) and not images:
            found.append(f"cell {i} shows a figure but holds no image")
    prose = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    images = sum("image/png" in o.get("data", {}) for _, c in code for o in c.outputs)
    if _FIGURE_WORDS.search(prose) and images == 0:
        found.append("the prose refers to a figure but the notebook shows none")
    text = "".join(o.get("text", "") for o in code[0][1].outputs) if code else ""
    if "FAST = False" not in text:
        found.append("the first code cell does not print 'FAST = False': not a full-mode run")
    return found


def collapse_problems(nb: nbformat.NotebookNode) -> list[str]:
    """Cells whose committed output names a failed run (``pyromix.diagnostics``' warnings)
    without the prose that follows them (the next markdown cell) discussing the collapse."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        text = "".join(o.get("text", "") for o in cell.outputs)
        named = [f for f in FAILURES if f"{f}:" in text]
        after = next((c.source for c in nb.cells[i + 1 :] if c.cell_type == "markdown"), "")
        if named and "collapse" not in after.lower():
            found.append(f"cell {i} shows a failed run ({', '.join(named)}) the prose ignores")
    return found


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=IDS)
def test_committed_outputs_show_no_unexplained_collapse(notebook: Path) -> None:
    found = collapse_problems(nbformat.read(notebook, as_version=4))
    assert not found, f"{notebook.name}: " + "; ".join(found)


def test_collapse_check_can_fail() -> None:
    warned = nbformat.v4.new_code_cell(
        "print(warning)",
        execution_count=1,
        outputs=[nbformat.v4.new_output("stream", text="nvil: mode collapse: 1.0 of 10\n")],
    )
    silent = nbformat.v4.new_notebook(cells=[warned, nbformat.v4.new_markdown_cell("Good.")])
    (only,) = collapse_problems(silent)
    assert "cell 0 shows a failed run (mode collapse)" in only
    said = nbformat.v4.new_notebook(cells=[warned, nbformat.v4.new_markdown_cell("It collapsed.")])
    assert collapse_problems(said) == []


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=IDS)
def test_tutorial_executes(notebook: Path) -> None:
    execute_py.execute(notebook, fast=True)  # raises CellExecutionError with the cell's traceback


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=IDS)
def test_committed_outputs_are_from_a_full_run(notebook: Path) -> None:
    found = problems(nbformat.read(notebook, as_version=4))
    assert not found, f"{notebook.name}: " + "; ".join(found) + " (run tutorials/execute.py)"


def test_output_checks_can_fail() -> None:
    """Each check fires on a notebook stripped of what it checks."""
    source = nbformat.read(NOTEBOOKS[0], as_version=4)
    stripped = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("A plot of z.")])
    stripped.cells += [
        nbformat.v4.new_code_cell(c.source) for c in source.cells if c.cell_type == "code"
    ]
    found = problems(stripped)
    assert any("has no output" in p for p in found)
    assert any("never executed" in p for p in found)
    assert any("refers to a figure" in p for p in found)
    assert any("holds no image" in p for p in found)
    assert any("not a full-mode run" in p for p in found)
    fast = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                'print("FAST = True")',
                execution_count=1,
                outputs=[nbformat.v4.new_output("stream", text="FAST = True\n")],
            )
        ]
    )
    (only,) = problems(fast)
    assert "not a full-mode run" in only
    assert should_speak("x = 1\nprint(x)") and not should_speak("x = 1")
    assert shows_figure("for p in ps:\n    display(Image(str(p)))") and shows_figure("show(p)")
    assert not shows_figure("def show(p):\n    display(Image(filename=p))")
