"""Two adversarial passes, re-run as a careless or hostile user would, through the installed CLI.

Each case runs ``pyromix`` in a subprocess (niced, one torch thread) and checks the rules: the exit
status (0 ok, 1 diverged or failed, 2 bad input, 130 interrupted), a failure is one line on
stderr without a traceback, a file a message names exists, a ``--resume`` hint only where there
is a checkpoint, the user's checkpoint bytes are unchanged, and nothing temporary is left. Groups
1-9 are the first pass; 10-16 the second (nothing silently wrong, runs that stay usable, paths,
plugins, messages, several processes, no hangs), each case with its own check of what must hold.
It prints a table per defect group: cases tried, cases ok, defects left.

    python benchmarks/reliability_sweep.py [--work DIR] [--json PATH]

Takes some minutes: every case starts a Python process that imports torch and Pyro.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

EXE = shutil.which("pyromix") or sys.exit("install pyromix first (pip install -e .)")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
FAST = ["--samples", "20", "--quiet"]


@dataclass
class Result:
    group: str
    case: str
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    code: int | None = None
    stderr: str = ""  # its last line: the message a user sees


def start(*argv: str, cwd: Path, env: dict | None = None, group: bool = False) -> subprocess.Popen:
    return subprocess.Popen(
        ["nice", "-n", "10", EXE, *argv],
        cwd=cwd,
        env=ENV if env is None else env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=group,  # its own process group, as a terminal's Ctrl-C reaches it
        preexec_fn=_default_sigint,
    )


def _default_sigint() -> None:
    """Let Ctrl-C reach the command: a shell starts background jobs with SIGINT ignored, which
    their children inherit, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def finish(process: subprocess.Popen, timeout: float = 900) -> tuple[int, str]:
    _, err = process.communicate(timeout=timeout)
    return process.returncode, err


def rules(code: int, err: str, expected: set[int], cwd: Path) -> list[str]:
    """The problems with one command's outcome."""
    problems = []
    if code not in expected:
        problems.append(f"exit {code}, expected {sorted(expected)}: {err.strip()[-200:]}")
    failure = [line for line in err.strip().splitlines() if "pyromix" in line and ": " in line]
    if code != 0 and (len(err.strip().splitlines()) != 1 or "Traceback" in err):
        problems.append(f"not one line: {len(err.strip().splitlines())} lines")
    for line in failure:
        for path in re.findall(r"(?:in|is in) (\S+checkpoint\.pt)", line):
            if not (cwd / path).exists():
                problems.append(f"names {path}, which does not exist")
        if "--resume" in line and "continue with" in line:
            out = line.split("--out ")[-1].strip()
            if not (cwd / out / "checkpoint.pt").exists():
                problems.append("suggests --resume where there is no checkpoint")
    return problems


def last(err: str) -> str:
    lines = err.strip().splitlines()
    return lines[-1] if lines else ""


def leftovers(folder: Path) -> list[str]:
    if not folder.exists():
        return []
    return [f"left {p.name}" for p in folder.iterdir() if p.suffix == ".tmp"]


def run_case(group, case, argv, expected, cwd, results, keep=None, check=None, env=None):
    started = time.perf_counter()
    before = keep.read_bytes() if keep is not None else None
    code, err = finish(start(*argv, cwd=cwd, env=env))
    problems = rules(code, err, expected, cwd)
    if keep is not None and keep.read_bytes() != before:
        problems.append(f"{keep.name} changed")
    if check is not None:
        problems += check(code, err)
    results.append(Result(group, case, problems, time.perf_counter() - started, code, last(err)))
    return code, err


def interrupt(group, case, argv, cwd, results, wait_for=None, delay=1.0, check=None):
    started = time.perf_counter()
    process = start(*argv, cwd=cwd)
    if wait_for is None:  # start-up: once torch is loading, past the interpreter's own start
        maps = Path(f"/proc/{process.pid}/maps")
        while process.poll() is None and "libtorch" not in maps.read_text():
            time.sleep(0.01)
    else:
        while not wait_for.exists() and process.poll() is None:
            time.sleep(0.05)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)  # nice and the console script exec: one process
    code, err = finish(process)
    problems = rules(code, err, {130}, cwd) + (check(code, err) if check else [])
    results.append(Result(group, case, problems, time.perf_counter() - started, code, last(err)))


def sweep(work: Path) -> list[Result]:
    results: list[Result] = []
    np.save(work / "big6.npy", np.random.default_rng(0).normal(0, 1e6, (300, 5)))
    np.save(work / "big30.npy", np.random.default_rng(0).normal(0, 1e30, (300, 5)))
    (work / "afile").write_text("mine")
    base = ["fit", "vae", "--epochs", "2", "--hidden", "32", *FAST]
    assert finish(start(*base, "--out", "base", cwd=work))[0] == 0, "the base run failed"
    ckpt = work / "base" / "checkpoint.pt"
    second_round(work, results)  # first: it needs only the base run

    def copy(name: str) -> Path:
        shutil.copytree(work / "base", work / name)
        return work / name

    g = "1 divergence"
    run_case(g, "--lr 1e6", ["fit", "vae", "--lr", "1e6", "--out", "d1", *FAST], {1}, work, results)
    for name in ("big6", "big30"):
        argv = ["fit", "vae", "--data", f"{name}.npy", "--epochs", "2", "--out", name, *FAST]
        run_case(g, f"data {name}", argv, {0, 1}, work, results)
    argv = ["fit", "gmvae", "--lr", "1e6", "--pretrain-epochs", "2", "--out", "d2", *FAST]
    run_case(g, "gmvae --lr 1e6 (diverges in pretraining)", argv, {1}, work, results)
    run_case(
        g, "--lr 1e39", ["fit", "vae", "--lr", "1e39", "--out", "d3", *FAST], {2}, work, results
    )
    code, _ = run_case(
        g,
        "--lr 1e3",
        ["fit", "vae", "--lr", "1e3", "--epochs", "5", "--out", "d4", *FAST],
        {0, 1},
        work,
        results,
    )
    if code == 0:
        run_case(
            g,
            "evaluate the --lr 1e3 run",
            ["evaluate", "d4", "--samples", "20"],
            {0},
            work,
            results,
        )

    g = "2 one writer"
    started = time.perf_counter()
    argv = ["fit", "vae", "--epochs", "20", "--out", "conc", *FAST]
    first, second = start(*argv, "--seed", "1", cwd=work), start(*argv, "--seed", "2", cwd=work)
    (c1, e1), (c2, e2) = finish(first), finish(second)
    problems = [] if sorted((c1, c2)) == [0, 2] else [f"exit statuses {c1}, {c2}"]
    if not problems:
        seed = json.loads((work / "conc" / "metrics.json").read_text())["seed"]
        if seed != (1 if c1 == 0 else 2):
            problems.append(f"the directory holds seed {seed}, not the winner's")
        problems += rules(max(c1, c2), e1 if c1 else e2, {2}, work)
    seconds = time.perf_counter() - started
    message = f"{c1}: {last(e1)} | {c2}: {last(e2)}"
    results.append(Result(g, "two fits on one --out", problems, seconds, None, message))

    g = "3 outputs checked first"
    for case, argv in [
        ("--out an existing file", ["fit", "vae", "--out", "afile", *FAST]),
        ("--out under a file", ["fit", "vae", "--out", "afile/sub", *FAST]),
        ("sample --out a folder", ["sample", "base", "--out", "base"]),
        ("sample --out .xyz", ["sample", "base", "--out", "s.xyz"]),
        ("compare --json a folder", ["compare", "base", "base", "--json", "base"]),
    ]:
        run_case(g, case, argv, {2}, work, results, keep=ckpt)
    run_case(
        g,
        "evaluate DIR/checkpoint.pt",
        ["evaluate", str(copy("e1") / "checkpoint.pt"), "--samples", "20"],
        {0},
        work,
        results,
    )

    g = "4 sizes bounded"
    for case, argv in [
        ("iwae --particles 1e9", ["fit", "iwae", "--particles", "1000000000", "--out", "s1"]),
        ("--hidden 1e9", ["fit", "vae", "--hidden", "1000000000", "--out", "s2"]),
        ("--latent-dim 1e9", ["fit", "vae", "--latent-dim", "1000000000", "--out", "s3"]),
        ("sample --n 1e13", ["sample", "base", "--n", str(10**13), "--out", "s.png"]),
    ]:
        run_case(g, case, [*argv, *FAST] if argv[0] == "fit" else argv, {2}, work, results)

    g = "5 messages true; Ctrl-C"
    run_case(
        g,
        "--lr 0.3",
        ["fit", "vae", "--lr", "0.3", "--epochs", "5", "--out", "lry2", *FAST],
        {0, 1},
        work,
        results,
    )
    interrupt(
        g,
        "Ctrl-C in gmvae pretraining",
        ["fit", "gmvae", "--pretrain-epochs", "100000", "--out", "pre", *FAST],
        work,
        results,
        wait_for=work / "pre" / ".pyromix.lock",
        delay=3.0,
        check=lambda c, e: ["suggests --resume"] if "--resume" in e else [],
    )
    interrupt(
        g,
        "Ctrl-C in evaluation",
        ["evaluate", str(copy("e2")), "--samples", "100000"],
        work,
        results,
        wait_for=work / "e2" / ".pyromix.lock",
        delay=2.0,
    )
    interrupt(g, "Ctrl-C at start-up", ["list"], work, results, delay=0.0)
    interrupt(
        g,
        "Ctrl-C in training",
        ["fit", "vae", "--epochs", "1000", "--out", "tr", *FAST],
        work,
        results,
        wait_for=work / "tr" / "checkpoint.pt",
        delay=0.5,
        check=lambda c, e: [] if "continue with" in e else ["no resume hint"],
    )

    g = "6 no leftovers"
    started = time.perf_counter()
    process = start("fit", "vae", "--epochs", "10000", "--out", "k9", *FAST, cwd=work)
    while not (work / "k9" / "checkpoint.pt").exists() and process.poll() is None:
        time.sleep(0.05)
    time.sleep(1.0)
    process.kill()  # SIGKILL
    process.wait()
    (work / "k9" / "checkpoint.ptkilled.tmp").write_bytes(b"x" * 1000)
    epochs = torch.load(work / "k9" / "checkpoint.pt", weights_only=True)["epoch"]
    code, err = finish(
        start("fit", "vae", "--resume", "--epochs", str(epochs + 1), "--out", "k9", *FAST, cwd=work)
    )
    problems = rules(code, err, {0}, work) + leftovers(work / "k9")
    seconds = time.perf_counter() - started
    results.append(Result(g, "kill -9, then --resume", problems, seconds, code, last(err)))
    forced = copy("f1")
    (forced / "metrics.json1234.tmp").write_text("{")
    run_case(
        g,
        "--force after a kill",
        ["fit", "vae", "--force", "--epochs", "1", "--out", "f1", *FAST],
        {0},
        work,
        results,
        check=lambda c, e: leftovers(forced),
    )

    g = "7 corrupt run directories"
    for case, content in [("metrics [1,2]", b"[1,2]"), ("metrics random bytes", os.urandom(512))]:
        folder = copy(f"m{len(results)}")
        (folder / "metrics.json").write_bytes(content)
        run_case(
            g,
            case,
            ["evaluate", folder.name, "--samples", "20"],
            {0},
            work,
            results,
            keep=folder / "checkpoint.pt",
        )
    folder = copy("hand")
    torch.save({"format": "pyromix-checkpoint-1"}, folder / "checkpoint.pt")
    for command in (["evaluate", "hand"], ["sample", "hand", "--out", "h.png"]):
        run_case(
            g,
            f"hand-made checkpoint: {command[0]}",
            command,
            {2},
            work,
            results,
            keep=folder / "checkpoint.pt",
            check=lambda c, e: [] if "hand/checkpoint.pt" in e else ["file not named"],
        )
    folder = copy("size")
    saved = torch.load(folder / "checkpoint.pt", weights_only=True)
    saved["recipe"]["args"]["latent_dim"] = 7
    torch.save(saved, folder / "checkpoint.pt")
    run_case(
        g,
        "checkpoint of another size",
        ["evaluate", "size"],
        {2},
        work,
        results,
        keep=folder / "checkpoint.pt",
    )

    g = "8 resume refuses other settings"
    folder = copy("r1")
    for case, extra, expected in [
        ("--resume --data onehot", ["--data", "onehot"], {2}),
        ("--resume --seed 2", ["--seed", "2"], {2}),
        ("--resume --epochs 3 --patience 2", ["--epochs", "3", "--patience", "2"], {0}),
    ]:
        run_case(
            g,
            case,
            ["fit", "vae", "--resume", "--out", "r1", *extra, *FAST],
            expected,
            work,
            results,
            keep=folder / "checkpoint.pt" if expected == {2} else None,
        )
    run_case(
        g,
        "--resume --precision bf16-mixed on a 32-bit run",
        ["fit", "vae", "--resume", "--out", "r1", "--precision", "bf16-mixed", *FAST],
        {2},
        work,
        results,
        keep=folder / "checkpoint.pt",
    )

    g = "9 late refusals"
    run_case(
        g,
        "gmvae --clusters 2000",
        ["fit", "gmvae", "--clusters", "2000", "--out", "c1", *FAST],
        {2},
        work,
        results,
    )
    return results


def metric(folder: Path, key: str):
    path = folder / "metrics.json"
    return json.loads(path.read_text()).get(key) if path.exists() else None


def expect(condition: bool, problem: str) -> list[str]:
    return [] if condition else [problem]


def second_round(work: Path, results: list[Result]) -> None:
    """The second pass's cases, groups 10-16."""
    shutil.copytree(work / "base", work / "base2")
    g = "10 nothing silently wrong"
    es = ["fit", "vae", "--data", "digits", "--seed", "1", "--lr", "0.01", "--checkpoint-every"]
    es += ["0", "--epochs", "60", "--quiet", "--samples", "100"]
    run_case(
        g, "early stop (--patience 2)", [*es, "--patience", "2", "--out", "es"], {0}, work, results
    )
    stopped_at = metric(work / "es", "epochs")
    run_case(
        g,
        "resume with the same patience adds no epoch",
        [*es, "--patience", "2", "--out", "es", "--resume"],
        {0},
        work,
        results,
        check=lambda c, e: expect(metric(work / "es", "epochs") == stopped_at, "epochs changed"),
    )
    run_case(
        g,
        "fresh run, --patience 30",
        [*es, "--patience", "30", "--out", "es30"],
        {0},
        work,
        results,
    )
    run_case(
        g,
        "resume after early stopping with --patience 30 equals the fresh run",
        [*es, "--patience", "30", "--out", "es", "--resume"],
        {0},
        work,
        results,
        check=lambda c, e: expect(
            all(
                metric(work / "es", k) == metric(work / "es30", k)
                for k in ("epochs", "test_log_likelihood")
            ),
            f"epochs {metric(work / 'es', 'epochs')} vs {metric(work / 'es30', 'epochs')}",
        ),
    )
    original = np.random.default_rng(0).random((300, 4)).astype(np.float32)
    for name, changed in (("pts", original + 0.01), ("shape", original[:, :3])):
        np.save(work / f"{name}.npy", original)
        fit = ["fit", "vae", "--data", f"{name}.npy", "--out", name, "--epochs", "2", *FAST]
        run_case(g, f"fit on {name}.npy", fit, {0}, work, results)
        np.save(work / f"{name}.npy", changed)
        kept = work / name / "checkpoint.pt"
        for case, argv in [
            ("evaluate", ["evaluate", name, "--samples", "20"]),
            ("--resume", ["fit", "vae", "--out", name, "--resume", "--epochs", "3", *FAST]),
        ]:
            what = "changed" if name == "pts" else "changed shape"
            run_case(g, f"{case} after the data file {what}", argv, {2}, work, results, keep=kept)
    run_case(
        g,
        "--lr 1e4 --epochs 3",
        ["fit", "vae", "--lr", "1e4", "--epochs", "3", "--out", "lr4", *FAST],
        {1},
        work,
        results,
    )
    rows = np.random.default_rng(0).random((300, 3))
    text = "\n".join(",".join(f"{v:.5f}" for v in row) for row in rows) + "\n"
    (work / "bom.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    run_case(
        g,
        "CSV with a byte-order mark, no header",
        ["fit", "vae", "--data", "bom.csv", "--out", "bom", "--epochs", "1", *FAST],
        {0},
        work,
        results,
        check=lambda c, e: expect(points(work / "bom") == 300, f"{points(work / 'bom')} points"),
    )
    (work / "typo.csv").write_text(text.replace("0.", "O.", 1))
    run_case(
        g,
        "CSV whose first row has a typo",
        ["fit", "vae", "--data", "typo.csv", "--out", "typo", *FAST],
        {2},
        work,
        results,
    )

    g = "11 runs stay usable"
    (work / "sub").mkdir()
    np.save(work / "sub" / "rel.npy", np.random.default_rng(2).random((300, 4)))
    run_case(
        g,
        "fit --data rel.npy (relative)",
        ["fit", "vae", "--data", "rel.npy", "--out", "../relrun", "--epochs", "1", *FAST],
        {0},
        work / "sub",
        results,
    )
    (work / "elsewhere").mkdir()
    run_case(
        g,
        "evaluate ../relrun from elsewhere",
        ["evaluate", "../relrun", "--samples", "20"],
        {0},
        work / "elsewhere",
        results,
    )
    run_case(
        g,
        "--resume from elsewhere",
        ["fit", "vae", "--out", "../relrun", "--resume", "--epochs", "2", *FAST],
        {0},
        work / "elsewhere",
        results,
    )
    shutil.move(work / "sub" / "rel.npy", work / "moved.npy")
    for case, argv in [
        ("evaluate --data MOVED", ["evaluate", "relrun", "--samples", "20"]),
        ("sample --data MOVED", ["sample", "relrun", "--out", "moved.png"]),
        (
            "--resume --data MOVED",
            ["fit", "vae", "--out", "relrun", "--resume", "--epochs", "3", *FAST],
        ),
    ]:
        run_case(
            g,
            case.replace("MOVED", "at the moved file"),
            [*argv, "--data", "moved.npy"],
            {0},
            work,
            results,
        )
        run_case(
            g,
            case.replace("MOVED", "at another file"),
            [*argv, "--data", "pts.npy"],
            {2},
            work,
            results,
            keep=work / "relrun" / "checkpoint.pt",
        )
    for umask in (0o022, 0o002):
        folder = f"umask{umask:o}"
        started = time.perf_counter()
        process = subprocess.Popen(
            [
                "sh",
                "-c",
                f"umask {umask:03o} && exec {EXE} fit vae --epochs 1 --out {folder} "
                + " ".join(FAST),
            ],
            cwd=work,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        code, err = finish(process)
        modes = {p.name: p.stat().st_mode & 0o777 for p in (work / folder).iterdir() if p.is_file()}
        problems = rules(code, err, {0}, work) + [
            f"{name} has mode {mode:o}" for name, mode in modes.items() if mode != 0o666 & ~umask
        ]
        results.append(
            Result(
                g,
                f"file modes under umask {umask:03o}",
                problems,
                time.perf_counter() - started,
                code,
                last(err),
            )
        )

    g = "12 paths checked before work"
    (work / "dangling").symlink_to(work / "nowhere")
    (work / "loopa").symlink_to(work / "loopb")
    (work / "loopb").symlink_to(work / "loopa")
    for case, argv in [
        ("--out of 300 characters", ["fit", "vae", "--out", "x" * 300, *FAST]),
        ("sample --out with a 260-character name", ["sample", "base", "--out", "s" * 256 + ".png"]),
        ("--out a dangling symlink", ["fit", "vae", "--out", "dangling", *FAST]),
        ("--out a symlink loop", ["fit", "vae", "--out", "loopa", *FAST]),
        ("--out ''", ["fit", "vae", "--out", "", *FAST]),
        ("--out /proc/x", ["fit", "vae", "--out", "/proc/x", *FAST]),
        ("sample --out /proc/x.png", ["sample", "base", "--out", "/proc/x.png"]),
        ("compare --json /proc/x.json", ["compare", "base", "base", "--json", "/proc/x.json"]),
    ]:
        run_case(
            g,
            case,
            argv,
            {2},
            work,
            results,
            keep=ckpt_of(work),
            check=lambda c, e: expect(not (work / "runs").exists(), "wrote runs/"),
        )

    g = "13 plugin loading errors"
    plugins = {
        "import_fails.py": "raise RuntimeError('plugin broke at import time')\n",
        "syntax.py": "def f(:\n    pass\n",
        "missing.py": "import no_such_module_anywhere\n",
        "none.py": "from dataclasses import replace\nfrom pyromix.recipes import RECIPES\n"
        "NONE = replace(RECIPES['vae'], build=lambda args: None)\n",
    }
    for name, text in plugins.items():
        (work / name).write_text(text)
        run_case(
            g,
            f"fit {name}:NONE",
            ["fit", f"{name}:NONE", "--out", f"p_{name}", "--epochs", "1", *FAST],
            {2},
            work,
            results,
            check=lambda c, e, name=name: expect(name in e, "the plugin file is not named"),
        )
    run_case(
        g,
        "--plugin a module that raises at import",
        ["list", "--plugin", "import_fails"],
        {2},
        work,
        results,
        env={
            **ENV,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(work), os.getenv("PYTHONPATH")])),
        },
        check=lambda c, e: expect("import_fails.py" in e, "the plugin file is not named"),
    )

    g = "14 too few points"
    np.save(work / "three.npy", np.random.default_rng(0).random((3, 4)))
    run_case(
        g,
        "three points",
        ["fit", "vae", "--data", "three.npy", "--out", "three", *FAST],
        {0, 2},
        work,
        results,
    )
    run_case(
        g,
        "--limit 1",
        ["fit", "vae", "--limit", "1", "--out", "lim1", *FAST],
        {0, 2},
        work,
        results,
    )

    g = "15 messages true"
    (work / "random.csv").write_bytes(np.random.default_rng(0).bytes(2000))
    (work / "keyerror.py").write_text(
        "from dataclasses import replace\nfrom pyromix.recipes import RECIPES\n"
        "def build(args):\n    raise KeyError('a bug in a plugin')\n"
        "BUG = replace(RECIPES['vae'], build=build)\n"
    )
    for case, argv, expected, needle, banned in [
        ("--beta 1e308", ["fit", "vae", "--beta", "1e308", "--out", "b1"], {2}, "beta", "data"),
        (
            "--beta 1e38 (overflows)",
            ["fit", "vae", "--beta", "1e38", "--warmup", "0", "--out", "b2"],
            {1},
            "KL weight",
            "standardise",
        ),
        (
            "--seed 2**70",
            ["fit", "vae", "--seed", str(2**70), "--out", "s1"],
            {2},
            "--seed",
            "Overflow",
        ),
        (
            "compare R/checkpoint.pt",
            ["compare", "base/checkpoint.pt", "base2/checkpoint.pt", "--samples", "20"],
            {0},
            "",
            "has no",
        ),
        (
            "random.csv",
            ["fit", "vae", "--data", "random.csv", "--out", "rc"],
            {2},
            "random.csv",
            "codec",
        ),
        (
            "PYROMIX_TRACEBACK=0",
            ["fit", "keyerror.py:BUG", "--out", "kb"],
            {1},
            "KeyError",
            "Traceback",
        ),
    ]:
        env = {**ENV, "PYROMIX_TRACEBACK": "0"}
        run_case(
            g,
            case,
            [*argv, *FAST] if argv[0] == "fit" else argv,
            expected,
            work,
            results,
            env=env,
            check=lambda c, e, needle=needle, banned=banned: expect(
                needle in e and banned not in e, f"message lacks {needle!r} or has {banned!r}"
            ),
        )

    g = "16 one line on failure; several processes; no hangs"
    loud = {k: v for k, v in ENV.items() if k != "PYTHONWARNINGS"}  # warnings shown
    for case, argv, expected in [
        ("--lr 1e5, warnings shown", ["fit", "vae", "--lr", "1e5", "--out", "l5"], {1}),
        ("--lr 1e6, warnings shown", ["fit", "vae", "--lr", "1e6", "--out", "l6"], {1}),
    ]:
        run_case(g, case, [*argv, *FAST], expected, work, results, env=loud)
    np.save(work / "int8.npy", np.random.default_rng(0).integers(0, 100, (300, 6), np.int8))
    np.save(work / "uint8.npy", np.random.default_rng(0).integers(0, 255, (300, 8, 8), np.uint8))
    for name in ("int8", "uint8"):
        run_case(
            g,
            f"{name} data, warnings shown",
            ["fit", "vae", "--data", f"{name}.npy", "--lr", "1e3", "--out", f"i_{name}", *FAST],
            {0, 1},
            work,
            results,
            env=loud,
        )
    two = ["--accelerator", "cpu", "--devices", "2", "--strategy", "ddp"]
    run_case(
        g,
        "ddp --batch-size 1",
        ["fit", "vae", *two, "--batch-size", "1", "--out", "dd1", *FAST],
        {2},
        work,
        results,
    )
    run_case(
        g,
        "resume a one-process run with --devices 2",
        ["fit", "vae", "--resume", "--out", "base2", *two, *FAST],
        {2},
        work,
        results,
        keep=work / "base2" / "checkpoint.pt",
    )
    run_case(
        g,
        "--num-nodes 2 without a launcher",
        ["fit", "vae", "--num-nodes", "2", "--out", "nn", *FAST],
        {2},
        work,
        results,
    )
    run_case(
        g,
        "evaluate --samples 1e9",
        ["evaluate", "base", "--samples", "1000000000"],
        {2},
        work,
        results,
    )
    for case, how in (("Ctrl-C in a two-process run", "int"), ("kill -9 of rank 1", "kill")):
        started = time.perf_counter()
        folder = f"ddp_{how}"
        process = start(
            "fit",
            "vae",
            *two,
            "--epochs",
            "100000",
            "--checkpoint-every",
            "0",
            "--out",
            folder,
            *FAST,
            cwd=work,
            group=True,
        )
        while not (work / folder / "checkpoint.pt").exists() and process.poll() is None:
            time.sleep(0.1)
        time.sleep(1.0)
        if how == "int":
            os.killpg(process.pid, signal.SIGINT)  # as a terminal sends it: to every process
        else:
            children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text()
            os.kill(int(children.split()[0]), signal.SIGKILL)
        code, err = finish(process)
        expected = {130} if how == "int" else {1}
        problems = rules(code, err, expected, work)
        if how == "kill":
            problems += expect("rank 1" in err and "--resume" in err, "rank 1 or --resume unsaid")
        results.append(Result(g, case, problems, time.perf_counter() - started, code, last(err)))


def points(folder: Path) -> int | None:
    """How many points a run read (train + val + test)."""
    from pyromix.runs import load_run

    if not (folder / "checkpoint.pt").exists():
        return None
    data = load_run(folder).dataset
    return len(data.train) + len(data.val) + len(data.test)


def ckpt_of(work: Path) -> Path:
    return work / "base" / "checkpoint.pt"


def table(results: list[Result]) -> str:
    lines = ["| group | cases tried | cases ok | defects left |", "| --- | --- | --- | --- |"]
    for group in sorted(dict.fromkeys(r.group for r in results), key=lambda g: int(g.split()[0])):
        rows = [r for r in results if r.group == group]
        bad = [f"{r.case}: {'; '.join(r.problems)}" for r in rows if r.problems]
        ok = len(rows) - len(bad)
        lines.append(f"| {group} | {len(rows)} | {ok} | {' / '.join(bad) or '-'} |")
    tried, ok = len(results), sum(not r.problems for r in results)
    lines.append(f"| all | {tried} | {ok} | {tried - ok} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", help="folder for the runs (default: a new temporary one)")
    parser.add_argument("--json", help="write every case's result here")
    ns = parser.parse_args()
    work = Path(ns.work or tempfile.mkdtemp(prefix="pyromix-sweep-"))
    work.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    started = time.perf_counter()
    results = sweep(work)
    print(table(results))
    print(
        f"\n{len(results)} cases in {time.perf_counter() - started:.0f} s; load average "
        f"{load[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end; runs in {work}"
    )
    if ns.json:
        Path(ns.json).write_text(json.dumps([r.__dict__ for r in results], indent=2) + "\n")


if __name__ == "__main__":
    main()
