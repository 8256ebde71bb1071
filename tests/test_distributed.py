"""Several processes through Lightning Fabric: two CPU processes (gloo) against one.

Two processes split every global batch and sum their gradients, so each step is the one-process
step of the same batch; but each rank draws its own noise for its points (rank r seeds with
seed + r), so after the first step the runs differ by Monte-Carlo noise only. Their per-epoch
losses must agree to a statistical tolerance, ``REL_TOL``: measured differences are 0.01-0.6 %
(tests/README in the report); a missing loss or validation reduction would be off by 50 %.
``ddp_worker.py`` checks the gradient sum exactly, with the noise aligned.
"""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pyromix.cli import main
from pyromix.distributed import Devices
from pyromix.train import load_checkpoint

pytest.importorskip("lightning_fabric", reason="lightning-fabric is a dependency of pyromix")

TESTS = Path(__file__).parent
SMALL = ["--limit", "200", "--hidden", "32", "--samples", "20", "--quiet", "--seed", "1"]
TWO = ["--accelerator", "cpu", "--devices", "2", "--strategy", "ddp"]
REL_TOL = 0.03


def cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "pyromix.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, **kwargs)


def history(out: Path) -> dict:
    return load_checkpoint(out / "checkpoint.pt")["history"]


def assert_close(two: dict, one: dict) -> None:
    for key in ("train_loss", "val_loss"):
        assert len(two[key]) == len(one[key])
        for a, b in zip(two[key], one[key]):
            assert abs(a - b) <= REL_TOL * abs(b), (key, two[key], one[key])


def fit_both(tmp_path: Path, model: str, *extra: str) -> tuple[Path, Path, str]:
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["fit", model, "--out", str(one), *SMALL, *extra]) == 0
    done = cli("fit", model, "--out", str(two), *SMALL, *TWO, *extra)
    assert done.returncode == 0, done.stderr[-2000:]
    return one, two, done.stdout


@pytest.fixture(scope="module")
def vae_runs(tmp_path_factory):
    return fit_both(tmp_path_factory.mktemp("vae"), "vae", "--epochs", "3")


def test_two_processes_train_vae_like_one(vae_runs):
    one, two, stdout = vae_runs
    assert_close(history(two), history(one))
    # Rank 0 alone evaluates and writes: one report on stdout, the same files as one process.
    assert stdout.count('"test_log_likelihood"') == 1
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    assert len(load_checkpoint(two / "checkpoint.pt")["state"]["torch_rng"]) == 2


@pytest.mark.parametrize(
    "model, extra",
    [
        ("gmvae", ["--pretrain-epochs", "1"]),  # enumeration, pretraining, std annealing
        ("iop", ["--disc-steps", "2"]),  # a step hook: the discriminator's steps
    ],
)
def test_two_processes_train_enumerated_and_hooked_recipes_like_one(tmp_path, model, extra):
    # Small batches and --capture-after 1: most steps of each process replay captured graphs.
    captured = ["--batch-size", "20", "--capture-after", "1"]
    one, two, _ = fit_both(tmp_path, model, "--epochs", "1", *extra, *captured)
    assert_close(history(two), history(one))
    for run in (one, two):
        assert history(run)["capture"]["graphs"] >= 1, history(run)["capture"]


def test_a_killed_two_process_run_resumes_exactly(vae_runs, tmp_path):
    _, reference, _ = vae_runs
    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "pyromix.cli", "fit", "vae", "--out", str(out)]
    process = subprocess.Popen(
        [*command, *SMALL, *TWO, "--epochs", "50"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the kill reaches both ranks
    )
    try:
        while not (out / "checkpoint.pt").exists():
            assert process.poll() is None, "the run ended before it could be killed"
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    done = cli("fit", "vae", "--out", str(out), "--resume", "--epochs", "3", *SMALL, *TWO)
    assert done.returncode == 0, done.stderr[-2000:]
    resumed, uninterrupted = history(out), history(reference)
    assert resumed["train_loss"][:3] == uninterrupted["train_loss"]
    assert resumed["val_loss"][:3] == uninterrupted["val_loss"]


def test_summed_gradients_of_two_processes_equal_one_process_gradients(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    found = tmp_path / "ddp.json"
    done = subprocess.run(
        [sys.executable, str(TESTS / "ddp_worker.py"), str(found)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(found.read_text())
    assert result["world_size"] == 2 and result["rng_states_differ"]
    one = result["one_process_loss"]
    assert abs(result["loss"] - one) <= 1e-5 * abs(one)
    assert result["max_relative_gradient_error"] < 1e-5


def test_settings_that_cannot_run_are_refused_in_one_line(tmp_path, capsys):
    for args, message in [
        (["--precision", "16-mixed"], "invalid choice"),
        (["--devices", "0"], "expected an integer >= 1"),
        (["--device", "cpu", "--devices", "2"], "drop it or --devices"),
        (["--device", "tpu"], "expected 'cpu' or 'cuda"),
    ]:
        assert main(["fit", "vae", "--out", str(tmp_path / "x"), *SMALL, *args]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    with pytest.raises(ValueError, match="precision: expected one of"):
        Devices(precision="16-mixed")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_cuda_without_cuda_is_refused_before_any_work(tmp_path, capsys):
    for args in (["--accelerator", "cuda"], ["--device", "cuda"]):
        assert main(["fit", "vae", "--out", str(tmp_path / "x"), *SMALL, *args]) == 2
        assert "torch.cuda.is_available() is False" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_bf16_mixed_precision_on_cuda_trains(tmp_path):
    out = tmp_path / "bf16"
    args = ["fit", "vae", "--out", str(out), *SMALL, "--epochs", "2"]
    assert main([*args, "--accelerator", "cuda", "--precision", "bf16-mixed"]) == 0
    assert all(math.isfinite(v) for v in history(out)["val_loss"])


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_two_gpus_train_like_one(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["fit", "vae", "--out", str(one), *SMALL, "--epochs", "2", "--device", "cuda"]) == 0
    done = cli("fit", "vae", "--out", str(two), *SMALL, "--epochs", "2", "--accelerator", "cuda",
               "--devices", "2", "--strategy", "ddp")
    assert done.returncode == 0, done.stderr[-2000:]
    assert_close(history(two), history(one))
