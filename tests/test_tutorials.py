"""Execute every tutorial notebook in fast mode (PYROMIX_FAST=1); a cell that raises fails.

Each notebook runs top to bottom in a fresh kernel, with the tutorials folder as its working
directory. The cells' own asserts check what the text claims, so a passing run means the
tutorial both works and says true things.
"""

import os
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import NATIVE_KERNEL_NAME, KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
CELL_TIMEOUT_S = 300


def kernel_manager() -> KernelManager:
    """A manager for ipykernel's built-in ``python3`` kernel running ``sys.executable``.

    No kernel directories are searched, so a ``python3`` kernelspec installed for the user or
    the system (possibly another interpreter without pyromix) cannot shadow this environment.
    """
    specs = KernelSpecManager(kernel_dirs=[], ensure_native_kernel=True)
    km = KernelManager(kernel_name=NATIVE_KERNEL_NAME, kernel_spec_manager=specs)
    assert Path(km.kernel_spec.argv[0]).resolve() == Path(sys.executable).resolve(), (
        f"tutorial kernel would run {km.kernel_spec.argv[0]}, not this Python ({sys.executable})"
    )
    return km


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_tutorial_executes(notebook: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel is a child process and inherits this environment.
    monkeypatch.setenv("PYROMIX_FAST", "1")
    if "OMP_NUM_THREADS" not in os.environ:
        # The tutorials' networks are tiny: a second intra-op thread gains nothing, and on a
        # CPU shared with other processes torch's spinning threads slowed fast mode ~6x.
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(
        nb,
        km=kernel_manager(),
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(TUTORIALS)}},
    )
    client.execute()  # raises CellExecutionError with the failing cell and its traceback
