"""Execute every tutorial notebook in fast mode (PYROMIX_FAST=1); a cell that raises fails.

Each notebook runs top to bottom in a fresh kernel through ``tutorials/execute.py``, with the
tutorials folder as its working directory. The cells' own asserts check what the text claims, so
a passing run means the tutorial both works and says true things.
"""

import importlib.util
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
_spec = importlib.util.spec_from_file_location("tutorials_execute", TUTORIALS / "execute.py")
execute_py = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(execute_py)

NOTEBOOKS = execute_py.notebooks()
IDS = [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=IDS)
def test_tutorial_executes(notebook: Path) -> None:
    execute_py.execute(notebook, fast=True)  # raises CellExecutionError with the cell's traceback
