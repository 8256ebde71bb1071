"""Re-execute the tutorials in full mode and write them back with their outputs.

Usage (from the repository root, in the environment where pyromix is installed)::

    nice -n 10 python tutorials/execute.py                      # every notebook, in order
    nice -n 10 python tutorials/execute.py 02_clustering.ipynb  # one (a name or a path)
    python tutorials/execute.py --fast                          # fast mode: run, write nothing

Each notebook runs top to bottom in a fresh ``python3`` kernel of this interpreter, with the
tutorials folder as its working directory, one torch thread, ``PYTHONHASHSEED=0`` and
``PYROMIX_FAST`` unset, so the run is repeatable given the seeds set in the notebooks, up to
the last bits: captured steps (``pyromix.capture``) may differ from eager ones there, and whether
a step is captured depends on a wall-clock budget, the likely cause when two runs on a loaded
machine differ slightly. A sensitive run shows it: two full-mode runs of 04 with the same
package code put 135 and 134 test digits in EM-V1's largest cluster, while a standalone EM-V1
training repeated bit for bit. The notebook is then written back with its outputs, without
execution timestamps or widget state; figures are PNGs embedded at the dpi the cells chose and
stored with a 256-colour palette (about half the bytes; plots and digit grids lose nothing
visible), so the notebooks stay small in the repository.

Full-mode wall time on this project's 2-core CPU machine, one notebook at a time under
``nice -n 10``, while six other agents shared the two cores (load average, 1 min, at the start
and end of each run; the load inflates these times; 02 and 07 re-run later, five sessions
sharing the cores; 04 and 06 re-run with their sample grids beside four other sessions and two
benchmark processes):

=============================================  ========  ============
notebook                                       minutes   load average
=============================================  ========  ============
01_vae.ipynb                                   1.8       1.1 -> 3.8
02_clustering.ipynb                            12.1      8.0 -> 7.1
03_learned_priors.ipynb                        24.3      8.4 -> 12.6
04_mvae.ipynb                                  3.0       7.6 -> 6.6
05_implicit_prior_and_comparison.ipynb         16.0      11.0 -> 16.0
06_your_own_model.ipynb                        3.3       5.4 -> 6.1
07_flows_vae_iaf_gan.ipynb                     8.3       7.1 -> 7.7
08_greyscale_density.ipynb                     2.5       6.9 -> 7.8
=============================================  ========  ============

Every notebook written in full mode is stamped with where its outputs come from: the commit of
this checkout (``git rev-parse HEAD``), the date (UTC) and the versions of Python, pyromix, torch
and Pyro, in the notebook's metadata (``metadata["pyromix_execution"]``) and visibly, as a last
markdown cell ("Executed at commit ..."). The package's code must be committed: a full-mode
write is refused, before anything runs, when ``git status`` shows changes under ``pyromix/``,
``models/`` or ``guides/`` (the notebook itself may be changed: it is what is being executed), or
outside a git checkout; and a notebook is neither started nor written once the package has
changed from the commit the command started at (commits of other files meanwhile are fine).
``--check`` and ``--fast`` write nothing and need neither. A refused write rather than a
"+dirty" stamp, so that every stamp names code that can be checked out.

``tests/test_tutorials.py`` runs every notebook through :func:`execute` in fast mode and checks
the committed outputs and their stamps.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import NATIVE_KERNEL_NAME, KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from PIL import Image

__all__ = [
    "TUTORIALS",
    "notebooks",
    "kernel_manager",
    "execute",
    "strip_volatile",
    "shrink_figures",
    "source_commit",
    "stamp",
    "stamp_text",
    "main",
]

TUTORIALS = Path(__file__).resolve().parent
REPOSITORY = TUTORIALS.parent
CELL_TIMEOUT_S = 3600  # a full-mode cell trains several models
PACKAGE_DIRS = ("pyromix", "models", "guides")  # the code a notebook's outputs depend on
STAMP_KEY = "pyromix_execution"  # notebook metadata: where the outputs come from
STAMP_CELL = "execution-stamp"  # id (and tag) of the visible stamp, the last markdown cell


def notebooks() -> list[Path]:
    """Every tutorial notebook, in reading order (file names start with their number)."""
    return sorted(TUTORIALS.glob("*.ipynb"))


def kernel_manager() -> KernelManager:
    """A manager for ipykernel's built-in ``python3`` kernel running ``sys.executable``.

    No kernel directories are searched, so a ``python3`` kernelspec installed for the user or
    the system (possibly another interpreter without pyromix) cannot shadow this environment.
    """
    specs = KernelSpecManager(kernel_dirs=[], ensure_native_kernel=True)
    km = KernelManager(kernel_name=NATIVE_KERNEL_NAME, kernel_spec_manager=specs)
    if Path(km.kernel_spec.argv[0]).resolve() != Path(sys.executable).resolve():
        kernel_python = km.kernel_spec.argv[0]
        raise RuntimeError(f"tutorial kernel would run {kernel_python}, not {sys.executable}")
    return km


def strip_volatile(nb: nbformat.NotebookNode) -> None:
    """Drop what changes from run to run without saying anything: timings and widget state."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        for output in cell.get("outputs", []):
            output.get("data", {}).pop("application/vnd.jupyter.widget-view+json", None)


def shrink_figures(nb: nbformat.NotebookNode) -> None:
    """Re-encode every PNG output with a 256-colour palette where that is smaller.

    Deterministic (median cut, no dithering), so re-running a notebook rewrites the same bytes.
    """
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" not in data:
                continue
            raw = base64.b64decode(data["image/png"])
            buffer = io.BytesIO()
            image = Image.open(io.BytesIO(raw)).convert("RGB")
            image.quantize(256, Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
                buffer, "PNG", optimize=True
            )
            if buffer.tell() < len(raw):
                data["image/png"] = base64.b64encode(buffer.getvalue()).decode("ascii")


def source_commit(root: Path = REPOSITORY, since: str | None = None) -> str:
    """The commit (``git rev-parse HEAD``) of the checkout at ``root``, whose package is clean.

    Arguments:
        root: the checkout.
        since: a commit the package must not have changed from (the one a run started at;
            commits that change only other files, docs say, may come in between); the result
            is then ``since``.

    Raises:
        SystemExit: ``root`` is not a git checkout, ``git status`` shows uncommitted or
            untracked files under ``pyromix/``, ``models/`` or ``guides/``, or they differ
            from ``since``.
    """

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(
                f"execute.py: a full-mode write stamps the notebook with its commit, but {root} is"
                f" not a git checkout ({done.stderr.strip()}); use --check or --fast there"
            )
        return done.stdout

    commit = git("rev-parse", "HEAD").strip()
    changed = [line[3:] for line in git("status", "--porcelain", "--", *PACKAGE_DIRS).splitlines()]
    if changed:
        raise SystemExit(
            f"execute.py: uncommitted changes in {', '.join(changed)}; commit them first, so the"
            " notebook's stamp names the code its outputs come from"
        )
    if since is not None and git("diff", "--name-only", since, commit, "--", *PACKAGE_DIRS):
        raise SystemExit(f"execute.py: the package changed since {since[:12]} while executing")
    return commit if since is None else since


def stamp_text(record: dict[str, str]) -> str:
    """The visible stamp, the notebook's last markdown cell, for a metadata ``record``."""
    return (
        f"*Executed at commit `{record['commit'][:12]}` on {record['date']}, with pyromix"
        f" {record['pyromix']}, torch {record['torch']}, Pyro {record['pyro']} and Python"
        f" {record['python']}.*"
    )


def stamp(nb: nbformat.NotebookNode, commit: str, date: str | None = None) -> None:
    """Record in ``nb`` the commit and versions its outputs come from, replacing an old stamp.

    Arguments:
        nb: an executed notebook, changed in place: ``metadata["pyromix_execution"]`` and a last
            markdown cell (id and tag ``execution-stamp``) saying the same in words.
        commit: the full hash, from :func:`source_commit`.
        date: ``YYYY-MM-DD HH:MM UTC``; now by default.
    """
    record = {
        "commit": commit,
        "date": date or datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),  # the kernel's interpreter: see kernel_manager
        "pyromix": version("pyromix"),
        "torch": version("torch"),
        "pyro": version("pyro-ppl"),
    }
    nb.metadata[STAMP_KEY] = record
    nb.cells = [cell for cell in nb.cells if cell.get("id") != STAMP_CELL]
    text = stamp_text(record)
    cell = nbformat.v4.new_markdown_cell(text, id=STAMP_CELL, metadata={"tags": [STAMP_CELL]})
    nb.cells.append(cell)


def execute(path: Path, fast: bool) -> nbformat.NotebookNode:
    """Run one notebook top to bottom in a fresh kernel and return it with its outputs.

    Arguments:
        path: the ``.ipynb`` file.
        fast: run with ``PYROMIX_FAST=1`` (tiny settings, the tests' mode) instead of full mode.

    Returns:
        The executed notebook, with volatile metadata stripped and its figures shrunk; the file
        is not written.

    Raises:
        nbclient.exceptions.CellExecutionError: a cell raised; the message holds its traceback.
    """
    # The kernel is a child process and inherits this environment; restore it afterwards.
    saved = dict(os.environ)
    os.environ["PYTHONHASHSEED"] = "0"
    # tqdm.auto warns in a kernel without ipywidgets; the tutorials never show a progress bar.
    os.environ["PYTHONWARNINGS"] = "ignore:IProgress not found"
    # The tutorials' networks are tiny: a second intra-op thread gains nothing, and on a CPU
    # shared with other processes torch's spinning threads slowed fast mode ~6x.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if fast:
        os.environ["PYROMIX_FAST"] = "1"
    else:
        os.environ.pop("PYROMIX_FAST", None)
    try:
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(
            nb,
            km=kernel_manager(),
            timeout=CELL_TIMEOUT_S,
            record_timing=False,
            resources={"metadata": {"path": str(path.parent)}},
        )
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    strip_volatile(nb)
    shrink_figures(nb)
    return nb


def _resolve(name: str) -> Path:
    path = Path(name)
    if not path.exists():
        path = TUTORIALS / name
    if path.suffix != ".ipynb" or not path.is_file():
        raise SystemExit(f"execute.py: expected a notebook in {TUTORIALS}, got {name!r}")
    return path


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: execute the named notebooks (default: all) and write them back."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", help="names or paths (default: all, in order)")
    parser.add_argument(
        "--fast", action="store_true", help="PYROMIX_FAST=1 (tiny settings); writes nothing"
    )
    parser.add_argument("--check", action="store_true", help="execute in full mode, write nothing")
    args = parser.parse_args(argv)
    write = not (args.fast or args.check)  # only full-mode outputs are ever committed
    paths = [_resolve(name) for name in args.notebooks] or notebooks()
    commit = source_commit() if write else ""  # refused before anything runs
    for path in paths:
        if write:
            source_commit(since=commit)  # fail fast: the package changed since the start
        load = os.getloadavg()[0]
        started = time.perf_counter()
        nb = execute(path, fast=args.fast)
        minutes = (time.perf_counter() - started) / 60
        if write:
            source_commit(since=commit)  # the package is still the code that ran
            stamp(nb, commit)
            nbformat.write(nb, path)
        print(
            f"{path.name}: {minutes:.1f} min, load average {load:.2f} -> {os.getloadavg()[0]:.2f}"
            f"{f', written ({path.stat().st_size / 1024:.0f} KiB)' if write else ''}",
            flush=True,
        )


if __name__ == "__main__":
    main()
