"""The tutorials run, and their committed form carries the outputs of a full-mode run.

Every notebook is executed in fast mode (PYROMIX_FAST=1) through ``tutorials/execute.py``; a cell
that raises fails, and the cells' own asserts check what the text claims. The committed files
are read as they are: they must hold full-mode outputs (``tutorials/execute.py`` writes them), so
a reader on the web sees the figures and numbers the prose discusses. Each committed notebook
carries the stamp ``execute.py`` writes (the commit and versions its outputs come from), and the
stamped commit must be in this repository's history (``git cat-file -e``). Run outside a git
checkout (an unpacked archive), or in a shallow clone that may not hold the commit, the stamp's
form is still checked (a full 40-digit hash, the visible cell matching the metadata) but its
commit cannot be looked up, and that part is not checked.
"""

import ast
import importlib.util
import re
import subprocess
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


def commit_known(commit: str, root: Path = TUTORIALS.parent) -> bool | None:
    """Whether ``commit`` is in the history of the git checkout at ``root``; None when that
    cannot be told (no git, not a checkout, or a shallow clone)."""
    try:
        shallow = subprocess.run(["git", "-C", str(root), "rev-parse", "--is-shallow-repository"],
                                 capture_output=True, text=True)
    except FileNotFoundError:
        return None
    if shallow.returncode or shallow.stdout.strip() != "false":
        return None
    found = subprocess.run(["git", "-C", str(root), "cat-file", "-e", f"{commit}^{{commit}}"],
                           capture_output=True)
    return found.returncode == 0


def stamp_problems(nb: nbformat.NotebookNode, root: Path = TUTORIALS.parent) -> list[str]:
    """What is wrong with a notebook's execution stamp, one line per problem."""
    record = nb.metadata.get(execute_py.STAMP_KEY)
    if record is None:
        return ["no execution stamp in its metadata"]
    found = []
    if not re.fullmatch(r"[0-9a-f]{40}", record.get("commit", "")):
        found.append(f"the stamp's commit {record.get('commit')!r} is not a full hash")
    elif commit_known(record["commit"], root) is False:
        found.append(f"the stamped commit {record['commit'][:12]} is not in the history")
    missing = {"date", "python", "pyromix", "torch", "pyro"} - set(record)
    if missing:
        found.append(f"the stamp lacks {', '.join(sorted(missing))}")
    last = nb.cells[-1] if nb.cells else None
    shown = last is not None and last.cell_type == "markdown" and last.get("id") == "execution-stamp"
    if not missing and not (shown and last.source == execute_py.stamp_text(record)):
        found.append("the last cell does not show the stamp of its metadata")
    return found


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=IDS)
def test_committed_notebook_is_stamped(notebook: Path) -> None:
    found = stamp_problems(nbformat.read(notebook, as_version=4))
    assert not found, f"{notebook.name}: " + "; ".join(found) + " (run tutorials/execute.py)"


def git(root: Path, *args: str) -> str:
    author = ["-c", "user.name=t", "-c", "user.email=t@t"]
    done = subprocess.run(["git", "-C", str(root), *author, *args], capture_output=True,
                          text=True, check=True)
    return done.stdout.strip()


def test_stamp_names_a_clean_commit_and_its_check_can_fail(tmp_path: Path) -> None:
    repo, plain = tmp_path / "repo", tmp_path / "plain"
    (repo / "pyromix").mkdir(parents=True)
    plain.mkdir()
    git(repo, "init", "-q")
    (repo / "pyromix/model.py").write_text("x = 1\n")
    (repo / "notes.txt").write_text("a\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    head = git(repo, "rev-parse", "HEAD")
    (repo / "notes.txt").write_text("changed outside the package\n")
    assert execute_py.source_commit(repo) == head
    (repo / "pyromix/model.py").write_text("x = 2\n")
    with pytest.raises(SystemExit, match="uncommitted changes in pyromix/model.py"):
        execute_py.source_commit(repo)
    (repo / "pyromix/model.py").write_text("x = 1\n")
    (repo / "guides").mkdir()
    (repo / "guides/new.py").write_text("")
    with pytest.raises(SystemExit, match="uncommitted changes in guides/"):
        execute_py.source_commit(repo)
    with pytest.raises(SystemExit, match="not a git checkout"):
        execute_py.source_commit(plain)
    (repo / "guides/new.py").unlink()
    git(repo, "commit", "-q", "-am", "notes only")  # a commit outside the package meanwhile
    assert execute_py.source_commit(repo, since=head) == head
    (repo / "pyromix/model.py").write_text("x = 3\n")
    git(repo, "commit", "-q", "-am", "package")
    with pytest.raises(SystemExit, match=f"the package changed since {head[:12]}"):
        execute_py.source_commit(repo, since=head)

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
    assert stamp_problems(nb, repo) == ["no execution stamp in its metadata"]
    execute_py.stamp(nb, head, date="2026-01-01 00:00 UTC")
    execute_py.stamp(nb, head, date="2026-01-02 00:00 UTC")  # replaces, never adds a second
    assert [c.cell_type for c in nb.cells] == ["code", "markdown"]
    assert nb.cells[-1].source.startswith(f"*Executed at commit `{head[:12]}` on 2026-01-02")
    nbformat.validate(nb)
    assert stamp_problems(nb, repo) == []
    assert commit_known(head, repo) is True and commit_known(head, plain) is None
    nb.metadata[execute_py.STAMP_KEY]["commit"] = "0" * 40
    assert stamp_problems(nb, repo) == [
        "the stamped commit 000000000000 is not in the history",
        "the last cell does not show the stamp of its metadata",
    ]
    nb.metadata[execute_py.STAMP_KEY]["commit"] = head[:7]
    assert "is not a full hash" in stamp_problems(nb, repo)[0]


def test_a_full_mode_write_is_refused_before_anything_runs(monkeypatch) -> None:
    ran = []
    monkeypatch.setattr(execute_py, "execute", lambda path, fast: ran.append(path))

    def dirty(root=None, since=None):
        raise SystemExit("execute.py: uncommitted changes in pyromix/x.py")

    monkeypatch.setattr(execute_py, "source_commit", dirty)
    with pytest.raises(SystemExit, match="uncommitted changes"):
        execute_py.main([str(NOTEBOOKS[0])])
    assert ran == []
    execute_py.main(["--check", str(NOTEBOOKS[0])])  # writes nothing: no commit needed
    assert ran == [NOTEBOOKS[0]]
