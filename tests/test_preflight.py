"""What several processes would each refuse is refused once, before they are launched; Ctrl-C
is said once; a process that dies is named; an evaluation that would take days is refused."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

import pyromix.cli
import pyromix.distributed
import pyromix.preflight
from pyromix.cli import main
from pyromix.distributed import Devices, ProcessLost, Replicas
from pyromix.preflight import check_evaluation_time, check_launcher

TINY = ["--data", "onehot", "--hidden", "8", "--samples", "10", "--quiet"]
TWO = ["--accelerator", "cpu", "--devices", "2", "--strategy", "ddp"]


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def no_launch(monkeypatch):
    """Fail the test if any process would be launched."""

    def launch(self):
        raise AssertionError("launched before refusing")

    monkeypatch.setattr(Devices, "start", launch)


@pytest.fixture(scope="module")
def one_process_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pre") / "run"
    assert main(["fit", "vae", "--epochs", "1", "--out", str(out), *TINY]) == 0
    return out


@pytest.mark.parametrize(
    "extra, message",
    [
        ([*TWO, "--batch-size", "1"], "batch_size: expected at least one point per process (2)"),
        (["--num-nodes", "2"], "num_nodes: 2 machines need a launcher"),
    ],
)
def test_settings_every_process_would_refuse_are_refused_before_launching(
    extra, message, tmp_path, no_launch, capsys, monkeypatch
):
    for key in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "SLURM_NTASKS", "LSB_JOBID"):
        monkeypatch.delenv(key, raising=False)
    out = tmp_path / "run"
    assert main(["fit", "vae", "--epochs", "1", "--out", str(out), *TINY, *extra]) == 2
    assert message in one_line(capsys.readouterr().err)
    assert not out.exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (TWO, "was written by 1 process(es); resume it with the same number"),
        (["--precision", "bf16-mixed"], "was trained at precision '32-true'"),
    ],
)
def test_resuming_with_other_processes_or_precision_is_refused_before_launching(
    extra, message, one_process_run, tmp_path, no_launch, capsys
):
    out = tmp_path / "run"
    shutil.copytree(one_process_run, out)
    before = (out / "checkpoint.pt").read_bytes()
    argv = ["fit", "vae", "--resume", "--epochs", "2", "--out", str(out), *TINY, *extra]
    assert main(argv) == 2
    assert message in one_line(capsys.readouterr().err)
    assert (out / "checkpoint.pt").read_bytes() == before


def test_a_launchers_environment_lets_several_machines_start():
    check_launcher(Devices(num_nodes=2), environ={"SLURM_NTASKS": "2", "SLURM_PROCID": "0"})
    with pytest.raises(ValueError, match="torchrun --nnodes 3"):
        check_launcher(Devices(num_nodes=3), environ={"RANK": "0"})  # torchrun sets all three


@pytest.mark.parametrize("rank, printed", [(None, 1), ("1", 0)])
def test_ctrl_c_is_said_once_by_rank_0(rank, printed, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    if rank is not None:
        monkeypatch.setenv("LOCAL_RANK", rank)  # what Fabric's launcher gives the other process

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(pyromix.cli, "_fit_locked", interrupted)
    argv = ["fit", "vae", "--out", str(tmp_path / "r"), *TINY, *TWO]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert err.count("interrupted") == printed and err.count("\n") == printed, err


class _Ended:
    def poll(self):
        return -signal.SIGKILL


class _Fabric:
    global_rank, world_size = 0, 3

    class strategy:  # noqa: N801 - Fabric's attribute names
        class launcher:  # noqa: N801
            procs = [_Ended(), type("Alive", (), {"poll": lambda self: None})()]


def test_a_failed_collective_names_the_process_that_ended(monkeypatch):
    replicas = Replicas(torch.device("cpu"), _Fabric())

    def closed(*args, **kwargs):
        raise RuntimeError("[gloo/transport/tcp/pair.cc:534] Connection closed by peer")

    monkeypatch.setattr(torch.distributed, "all_reduce", closed)
    with pytest.raises(ProcessLost, match=r"^the process of rank 1 ended \(killed by signal 9\)$"):
        replicas.sum(1.0)


def test_an_evaluation_estimated_to_take_days_is_refused_and_hours_are_announced(
    monkeypatch, capsys
):
    clock = [0.0]
    monkeypatch.setattr(pyromix.preflight.time, "perf_counter", lambda: clock[0])

    def evaluate(samples):  # one second per 4 samples per point
        clock[0] += samples / 4

    with pytest.raises(
        ValueError,
        match=r"1000000000 .* take about 2893.5 days .* at most a day, about 345600 samples",
    ):
        check_evaluation_time(evaluate, 10**9)
    assert check_evaluation_time(evaluate, 40000) == 10000.0
    assert "will take about 2.8 hours" in capsys.readouterr().err
    assert check_evaluation_time(evaluate, 60) == 0.0  # no probe for cheap requests
    assert clock[0] == 2.0  # two probes of 4 samples ran, no more


def test_evaluate_refuses_a_billion_samples_per_point_in_one_line(one_process_run, capsys):
    started = time.monotonic()
    assert main(["evaluate", str(one_process_run), "--samples", "1000000000"]) == 2
    line = one_line(capsys.readouterr().err)
    assert "1000000000 importance samples per point would take about" in line
    assert time.monotonic() - started < 600  # refused, not run for hours


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="POSIX process groups")
def test_killing_rank_1_ends_rank_0_in_one_line_naming_it(tmp_path):
    pytest.importorskip("lightning_fabric")
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "pyromix.cli", "fit", "vae", "--out", str(out)]
    process = subprocess.Popen(
        [*command, *TINY, *TWO, "--epochs", "100000", "--checkpoint-every", "0"],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        while not (out / "checkpoint.pt").exists():
            assert process.poll() is None, process.communicate()
            time.sleep(0.2)
        children = _children(process.pid)
        assert len(children) == 1, children  # Fabric's rank 1
        os.kill(children[0], signal.SIGKILL)
        _, err = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 1
    line = one_line(err)
    assert "the process of rank 1 ended (killed by signal 9)" in line
    assert "continue with: pyromix fit vae --resume --out" in line


def _children(pid: int) -> list[int]:
    path = f"/proc/{pid}/task/{pid}/children"
    return [int(child) for child in open(path).read().split()]
