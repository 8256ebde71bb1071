"""Issue 15: every failure of the CLI is one line with the right exit status, and loses nothing.

Exit status: 1 training diverged or failed, 2 bad input (refused before any work), 130
interrupted. Behaviour that needs a real process (signals, two processes on one directory, a
``kill -9``, what the interpreter prints) runs the installed ``pyromix`` in a subprocess; the rest
calls :func:`pyromix.cli.main` in-process, which returns the same status and would raise, not
print, on any error it does not handle.
"""

import json
import os
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pyromix.runs
import pyromix.train
from pyromix.cli import main
from pyromix.data import DataError, load_dataset
from pyromix.resources import COPIES_PER_WEIGHT, FLOAT_BYTES, training_bytes
from pyromix.rundir import LOCK
from pyromix.runs import load_run, prepare_recipe
from pyromix.train import History, load_checkpoint, save_checkpoint

TINY = ["--data", "onehot", "--hidden", "8", "--samples", "10", "--quiet"]
EXE = shutil.which("pyromix")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A one-epoch run on OneHot, shared read-only: tests work on copies."""
    out = tmp_path_factory.mktemp("rel") / "run"
    assert main(["fit", "vae", "--epochs", "1", "--out", str(out), *TINY]) == 0
    return out


@pytest.fixture
def run_copy(trained, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def cli(*argv, **popen):
    """The installed ``pyromix`` command, started in a subprocess."""
    assert EXE is not None, "the pyromix console script is not installed"
    return subprocess.Popen(
        [EXE, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        # A shell starts background jobs with SIGINT ignored, which children inherit: restore it,
        # or the suite run in the background would wait forever for a Ctrl-C to end a command.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        **popen,
    )


def wait_for(path, process, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


# --------------------------------------------------------------- 1. divergence is not bad input


@pytest.mark.parametrize(
    "model, extra",
    [("vae", []), ("gmvae", ["--pretrain-epochs", "1"])],  # gmvae: in pretraining
)
def test_a_huge_learning_rate_diverges_with_exit_1(model, extra, tmp_path, capsys):
    out = tmp_path / "lr"
    argv = ["fit", model, "--lr", "1e6", "--epochs", "1", "--out", str(out), *extra]
    assert main([*argv, *TINY]) == 1
    line = one_line(capsys.readouterr().err)
    assert "training diverged" in line and "epoch 1, step" in line and "nothing was saved" in line
    assert not out.exists()  # it created the folder and left nothing in it


def test_divergence_on_resume_keeps_the_last_good_checkpoint(run_copy, monkeypatch, capsys):
    before = (run_copy / "checkpoint.pt").read_bytes()
    monkeypatch.setattr(pyromix.train.step, "evaluate_loss", lambda *args: float("nan"))
    assert main(["fit", "vae", "--resume", "--epochs", "3", "--out", str(run_copy), *TINY]) == 1
    line = one_line(capsys.readouterr().err)
    assert "epoch 2" in line and f"the last good epoch is in {run_copy}" in line
    assert (run_copy / "checkpoint.pt").read_bytes() == before


def test_data_too_large_to_model_diverges_at_the_first_step_naming_its_scale(tmp_path, capsys):
    np.save(tmp_path / "big.npy", np.full((40, 3), 1e30) * np.arange(1, 4))
    argv = ["fit", "vae", "--data", str(tmp_path / "big.npy"), "--out", str(tmp_path / "o")]
    assert main([*argv, "--epochs", "1", "--hidden", "8", "--quiet"]) == 1
    line = one_line(capsys.readouterr().err)
    assert "epoch 1, step 1" in line and "before any update" in line and "3e+30" in line


def test_collapsed_latents_skip_the_latent_gmm_instead_of_failing(trained, monkeypatch):
    run = load_run(trained)
    monkeypatch.setattr(run.guide, "latent_mean", lambda x: x.new_full((len(x), 2), torch.nan))
    metrics = pyromix.runs.evaluate_run(run, 10)
    assert "NaN" in metrics["gmm_skipped"]
    assert "gmm_acc" not in metrics and np.isfinite(metrics["test_log_likelihood"])


# ------------------------------------------------- 2. and 6. one writer; nothing left behind


def test_two_fits_on_one_directory_exactly_one_succeeds(tmp_path):
    out = tmp_path / "conc"
    argv = ["fit", "vae", "--epochs", "2", "--out", str(out), *TINY]
    first, second = cli(*argv, "--seed", "1"), cli(*argv, "--seed", "2")
    results = [p.communicate(timeout=300) for p in (first, second)]
    codes = sorted(p.returncode for p in (first, second))
    assert codes == [0, 2], results
    loser = results[[first.returncode, second.returncode].index(2)][1]
    assert "in use by another pyromix process" in one_line(loser) or "already holds a run" in loser
    winner_seed = 1 if first.returncode == 0 else 2
    assert json.loads((out / "metrics.json").read_text())["seed"] == winner_seed
    assert not (out / LOCK).exists()


def test_a_killed_runs_lock_and_temporary_files_do_not_block_resume(tmp_path):
    out = tmp_path / "killed"
    process = cli("fit", "vae", "--epochs", "10000", "--out", str(out), *TINY)
    wait_for(out / "checkpoint.pt", process)
    process.kill()  # SIGKILL: no handler runs, the lock file stays
    process.wait(timeout=60)
    assert (out / LOCK).exists()
    (out / "checkpoint.ptdead1234.tmp").write_bytes(b"half a checkpoint")  # as a kill mid-write
    epochs = load_checkpoint(out / "checkpoint.pt")["epoch"]
    argv = ["--epochs", str(epochs + 1), "--out", str(out), "--samples", "10", "--quiet"]
    resumed = cli("fit", "vae", "--resume", *argv)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert json.loads((out / "metrics.json").read_text())["epochs"] == epochs + 1
    assert not list(out.glob("*.tmp")) and not (out / LOCK).exists()


def test_force_removes_stale_temporaries_and_the_old_run(run_copy, capsys):
    (run_copy / "metrics.json12ab.tmp").write_text("{")
    assert main(["fit", "vae", "--force", "--epochs", "2", "--out", str(run_copy), *TINY]) == 0
    assert not list(run_copy.glob("*.tmp"))
    assert json.loads((run_copy / "metrics.json").read_text())["epochs"] == 2


def test_a_second_writer_is_refused_while_the_first_holds_the_directory(run_copy, capsys):
    from pyromix.rundir import run_lock

    before = (run_copy / "checkpoint.pt").read_bytes()
    with run_lock(run_copy):
        assert main(["evaluate", str(run_copy), "--samples", "5"]) == 2
        assert main(["fit", "vae", "--resume", "--out", str(run_copy), *TINY]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and all(f"pid {os.getpid()}" in line for line in lines)
    assert (run_copy / "checkpoint.pt").read_bytes() == before


# ----------------------------------------------- 3., 4., 9. input checked before any work


def _no_work(*args, **kwargs):
    raise AssertionError("work started before the input was checked")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["fit", "vae", "--out", "afile"], "'afile' exists and is not a folder"),
        (["fit", "vae", "--out", "afile/sub"], "'afile' is a file"),
        (["fit", "vae", "--resume", "--force"], "expected one of them, got both"),
        (["fit", "vae", "--lr", "1e39"], "--lr: expected a number in (0, 3.4e+38], got '1e39'"),
        (["fit", "iwae", "--particles", "1000000000"], "batch_size/particles/hidden: needs at"),
        (["fit", "vae", "--hidden", "1000000000"], "hidden/latent_dim/clusters: needs at"),
        (["fit", "vae", "--latent-dim", "1000000000"], "of memory (mostly for weights)"),
        (["fit", "gmvae", "--clusters", "2000"], "clusters: expected at most the 1258 training"),
        (["compare", "a", "b", "--json", "."], "'.' is a folder; expected a file name"),
        (["sample", "a", "--out", "."], "'.' is a folder"),
        (["sample", "a", "--out", "s.xyz"], "out: expected a file name ending in one of"),
        (["sample", "a", "--out", "afile/s.png"], "'afile' exists and is not a folder"),
    ],
)
def test_bad_input_is_refused_before_any_work(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("mine")
    for name in ("evaluate_run", "train_run", "load_run", "evaluate_points"):
        monkeypatch.setattr(pyromix.runs, name, _no_work)  # would make main return 1
    assert main(argv) == 2
    assert message in one_line(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
    assert (tmp_path / "afile").read_text() == "mine"


def test_sample_refuses_more_samples_than_memory_holds(trained, tmp_path, capsys):
    assert main(["sample", str(trained), "--n", str(10**13), "--out", str(tmp_path / "s.png")]) == 2
    assert "n: needs at least" in one_line(capsys.readouterr().err)
    assert not (tmp_path / "s.png").exists()


def test_the_weight_estimate_is_a_lower_bound_of_the_real_parameter_count():
    run = prepare_recipe("vae", "digits", hidden=[32, 16], latent_dim=3, limit=20)
    real = sum(p.numel() for p in pyromix.train.unique_parameters(run.model, run.guide))
    estimate = training_bytes(run.args)["weights"] / (COPIES_PER_WEIGHT * FLOAT_BYTES)
    # encoder 64-32-16-3 with loc and scale heads, decoder 3-16-32-64: 2 x the chain is below.
    chain = (64 * 32 + 32) + (32 * 16 + 16) + (16 * 3 + 3)
    assert estimate == 2 * chain and chain < estimate <= real


def test_evaluate_accepts_the_checkpoint_file_and_writes_beside_it(run_copy, capsys):
    (run_copy / "metrics.json").unlink()
    assert main(["evaluate", str(run_copy / "checkpoint.pt"), "--samples", "5"]) == 0
    assert json.loads((run_copy / "metrics.json").read_text())["is_samples"] == 5


# ------------------------------------------------ 5. messages point at what exists; SIGINT


def test_sigint_during_pretraining_is_130_without_a_resume_hint(tmp_path):
    out = tmp_path / "pre"
    argv = ["fit", "gmvae", "--pretrain-epochs", "100000", "--out", str(out), *TINY]
    process = cli(*argv)
    wait_for(out / LOCK, process)
    time.sleep(1.0)  # into data loading or pretraining, before any checkpoint
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130
    line = one_line(err)
    assert "interrupted" in line and "--resume" not in line and "nothing was saved" in line
    assert not out.exists()


@pytest.mark.parametrize("when", ["start-up", "evaluation"])
def test_sigint_at_start_up_or_during_evaluation_is_one_line_130(when, run_copy):
    before = (run_copy / "checkpoint.pt").read_bytes()
    process = cli("evaluate", str(run_copy), "--samples", "100000")
    if when == "start-up":  # importing torch, so past the interpreter's own start
        deadline = time.monotonic() + 60
        while "libtorch" not in Path(f"/proc/{process.pid}/maps").read_text():
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
    else:
        wait_for(run_copy / LOCK, process)
        time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130 and "interrupted" in one_line(err)
    assert (run_copy / "checkpoint.pt").read_bytes() == before


# ------------------------------------------------------------- 7. corrupt run directories


@pytest.mark.parametrize(
    "content, note",
    [
        (b"[1, 2]", "holds a JSON list, not an object"),
        (bytes(range(256)) * 4, "is not readable JSON"),
        (b'{"model": "iwae", "dataset": "onehot", "seed": 0, "split_seed": 0}', "another run"),
    ],
)
def test_evaluate_rebuilds_a_corrupt_or_foreign_metrics_file(content, note, run_copy, capsys):
    before = (run_copy / "checkpoint.pt").read_bytes()
    (run_copy / "metrics.json").write_bytes(content)
    assert main(["evaluate", str(run_copy), "--samples", "5"]) == 0
    captured = capsys.readouterr()
    assert note in one_line(captured.err) and str(run_copy / "metrics.json") in captured.err
    metrics = json.loads((run_copy / "metrics.json").read_text())
    assert metrics["model"] == "vae" and metrics["is_samples"] == 5
    assert (run_copy / "checkpoint.pt").read_bytes() == before


def _hand_made(saved):
    return {"format": saved["format"]}


def _other_size(saved):
    saved["recipe"]["args"]["latent_dim"] = 5
    return saved


def _no_recipe(saved):
    saved["recipe"] = {}
    return saved


def _no_state_keys(saved):
    saved["state"] = {"model": {}}
    return saved


@pytest.mark.parametrize(
    "damage, message",
    [
        (_hand_made, "damaged or hand-made: expected 'state' to be a dict"),
        (_other_size, "was saved by another version of"),
        (_no_state_keys, "its state lacks guide, optimizer"),
        (_no_recipe, "records no recipe name and arguments"),
    ],
)
@pytest.mark.parametrize("command", ["evaluate", "sample", "resume", "compare"])
def test_a_damaged_checkpoint_is_one_line_naming_it(damage, message, command, run_copy, capsys):
    checkpoint = run_copy / "checkpoint.pt"
    torch.save(damage(load_checkpoint(checkpoint)), checkpoint)
    before = checkpoint.read_bytes()
    argv = {
        "evaluate": ["evaluate", str(run_copy)],
        "sample": ["sample", str(run_copy), "--out", str(run_copy / "s.png")],
        "resume": ["fit", "vae", "--resume", "--out", str(run_copy), *TINY],
        "compare": ["compare", str(run_copy), str(run_copy)],
    }[command]
    assert main(argv) == 2
    line = one_line(capsys.readouterr().err)
    assert message in line and repr(str(checkpoint)) in line
    assert checkpoint.read_bytes() == before


def test_compare_json_into_a_directory_is_refused_before_evaluating(trained, tmp_path, capsys):
    argv = ["compare", str(trained), str(trained), "--json", str(tmp_path)]
    assert main(argv) == 2
    assert "is a folder" in one_line(capsys.readouterr().err)


# ------------------------------------------------------- 8. resume refuses other settings


@pytest.mark.parametrize(
    "extra, named",
    [
        (["--seed", "2"], "seed=2 (the run has 0)"),
        (["--data", "digits"], "data='digits' (the run has 'onehot')"),
        (["--lr", "0.5", "--hidden", "16"], "hidden=[16] (the run has [8]), lr=0.5 (the run has 0.001)"),
    ],
)
def test_resume_refuses_a_conflicting_setting_naming_it(extra, named, run_copy, capsys):
    before = (run_copy / "checkpoint.pt").read_bytes()
    argv = ["fit", "vae", "--resume", "--out", str(run_copy), "--quiet", *extra]
    assert main(argv) == 2
    line = one_line(capsys.readouterr().err)
    assert named in line and "only epochs, patience and device can change" in line
    assert (run_copy / "checkpoint.pt").read_bytes() == before


def test_resume_allows_epochs_patience_device_and_the_same_settings(run_copy):
    argv = ["fit", "vae", "--resume", "--out", str(run_copy), "--epochs", "2", "--patience", "3"]
    assert main([*argv, "--device", "cpu", "--seed", "0", *TINY]) == 0
    saved = load_checkpoint(run_copy / "checkpoint.pt")
    assert saved["epoch"] == 2 and saved["recipe"]["args"]["patience"] == 3


def test_an_unexpected_error_is_one_line_exit_1(run_copy, monkeypatch, capsys):
    monkeypatch.setattr(pyromix.runs, "evaluate_run", lambda *a: 1 / 0)
    assert main(["evaluate", str(run_copy)]) == 1
    assert "failed: ZeroDivisionError: division by zero" in one_line(capsys.readouterr().err)
    monkeypatch.setenv("PYROMIX_TRACEBACK", "1")
    with pytest.raises(ZeroDivisionError):
        main(["evaluate", str(run_copy)])


# ------------------------------------------------ the checkpoint writer under injected faults


class Boom(OSError):
    """The injected failure."""


def _fail(*args, **kwargs):
    raise Boom("injected")


def _half_written(obj, f):
    f.write(b"\x80" * 100)  # a partial pickle, then the disk fills
    raise Boom("injected")


def _interrupted(obj, f):
    raise KeyboardInterrupt


def _folder_fsync_fails(real):
    def fsync(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise Boom("injected")
        return real(fd)

    return fsync


def _checkpoint(path, weight):
    history = History([1.0], [1.0], [1.0], [0.1], best_epoch=0)
    state = {
        "model": {"w": torch.full((3,), weight)},
        "guide": {},
        "optimizer": {},
        "torch_rng": torch.get_rng_state(),
        "generator": torch.Generator().get_state(),
    }
    return save_checkpoint(path, state=state, best=None, history=history, recipe={})


@pytest.mark.parametrize(
    "target, replacement",
    [
        ("torch.save", _fail),
        ("torch.save", _half_written),
        ("torch.save", _interrupted),
        ("os.fsync", _fail),
        ("os.replace", _fail),
    ],
)
def test_a_failed_checkpoint_write_keeps_the_previous_one(
    target, replacement, tmp_path, monkeypatch
):
    path = _checkpoint(tmp_path / "checkpoint.pt", 1.0)
    before = path.read_bytes()
    module, name = target.split(".")
    monkeypatch.setattr({"torch": torch, "os": os}[module], name, replacement)
    with pytest.raises((Boom, KeyboardInterrupt)):
        _checkpoint(path, 2.0)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert torch.equal(load_checkpoint(path)["state"]["model"]["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_a_folder_that_refuses_fsync_still_gets_the_new_checkpoint(tmp_path, monkeypatch):
    path = _checkpoint(tmp_path / "checkpoint.pt", 1.0)
    monkeypatch.setattr(os, "fsync", _folder_fsync_fails(os.fsync))
    _checkpoint(path, 2.0)
    assert torch.equal(load_checkpoint(path)["state"]["model"]["w"], torch.full((3,), 2.0))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


# ------------------------------------------- load_dataset: loads, or raises DataError, only

DTYPES = ["?", "i1", "u1", "i8", "f2", "f4", "f8", "c8", "U2", "M8[s]"]


# Points-by-features shapes most of the time, so that loading succeeds often; then any shape.
SHAPES = st.tuples(st.integers(3, 25), st.integers(1, 4)) | hnp.array_shapes(
    min_dims=0, max_dims=4, min_side=0, max_side=5
)


@settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    x=hnp.arrays(st.sampled_from(DTYPES), SHAPES),
    labels=st.sampled_from([None, None]) | hnp.arrays("f8", SHAPES),
    form=st.sampled_from(["array", "tensor", "npy"]),
    limit=st.none() | st.integers(1, 4),
)
def test_load_dataset_loads_or_raises_data_error_for_any_array(
    x, labels, form, limit, tmp_path_factory
):
    data = x
    if form == "tensor":
        if x.dtype.kind in "biuf":  # torch has no string, complex-as-such or datetime arrays
            data = torch.from_numpy(np.ascontiguousarray(x))
    if form == "npy":
        data = tmp_path_factory.mktemp("h") / "x.npy"
        np.save(data, x)
    try:
        dataset = load_dataset(data, labels=labels, limit=limit)
    except DataError as e:
        assert str(e) and "\n" not in str(e).strip()
        event("refused")
        return
    event("loaded")
    assert dataset.train.x.dtype == torch.float32 and torch.isfinite(dataset.train.x).all()
    assert len(dataset.train) >= 1 and dataset.data_dim >= 1


def test_resume_treats_an_omitted_argument_as_the_runs_own(tmp_path):
    from pyromix.runs.prepare import _check_resumable

    recorded = {"data": "mnist", "data_dir": "/idx", "seed": 1, "likelihood": "bernoulli"}
    given = {"data_dir": None, "seed": 1, "likelihood": "auto", "epochs": 9}
    _check_resumable(tmp_path / "c.pt", recorded, given, None, None)  # nothing differs
    with pytest.raises(ValueError, match=r"data_dir='/other' \(the run has '/idx'\)"):
        _check_resumable(tmp_path / "c.pt", recorded, {"data_dir": "/other"}, None, None)


def test_fit_checks_its_checkpoint_path_before_training(tmp_path, monkeypatch):
    from pyro.infer import Trace_ELBO

    (tmp_path / "afile").write_text("mine")
    run = prepare_recipe("vae", "onehot", hidden=[8], epochs=1)
    monkeypatch.setattr(pyromix.train.step, "evaluate_loss", _no_work)  # after the first epoch
    with pytest.raises(ValueError, match="checkpoint: .*afile' exists and is not a folder"):
        pyromix.train.fit(
            run.model, run.guide, run.dataset, Trace_ELBO(), checkpoint=tmp_path / "afile/c.pt"
        )


def test_generate_refuses_more_samples_than_memory_holds(trained):
    with pytest.raises(ValueError, match="n: needs at least .* for the samples"):
        pyromix.runs.generate(load_run(trained), 10**13)


def test_train_recipe_takes_the_run_directory_lock_too(run_copy):
    from pyromix.rundir import RunDirectoryBusy, run_lock

    before = (run_copy / "checkpoint.pt").read_bytes()
    with run_lock(run_copy), pytest.raises(RunDirectoryBusy, match="in use by another pyromix"):
        pyromix.runs.train_recipe("vae", "onehot", out=run_copy, resume=True, hidden=[8])
    assert (run_copy / "checkpoint.pt").read_bytes() == before


# ----------------------------------------------- second round: nothing silently wrong


ES = ["fit", "vae", "--data", "digits", "--limit", "200", "--hidden", "16", "--lr", "0.01"]
ES += ["--seed", "1", "--warmup", "0", "--checkpoint-every", "0", "--epochs", "40", *TINY[-3:]]


def test_resume_after_early_stopping_equals_a_fresh_run_with_the_larger_patience(tmp_path):
    stopped, fresh = tmp_path / "stopped", tmp_path / "fresh"
    assert main([*ES, "--patience", "1", "--out", str(stopped)]) == 0
    first = load_checkpoint(stopped / "checkpoint.pt")["history"]
    assert first["stopped"].startswith("early stopping") and len(first["train_loss"]) < 40
    assert main([*ES, "--patience", "1", "--out", str(stopped), "--resume"]) == 0
    again = load_checkpoint(stopped / "checkpoint.pt")["history"]
    assert again == first  # the same patience: still stopped, nothing trained
    assert main([*ES, "--patience", "6", "--out", str(stopped), "--resume"]) == 0
    assert main([*ES, "--patience", "6", "--out", str(fresh)]) == 0
    resumed = load_checkpoint(stopped / "checkpoint.pt")["history"]
    reference = load_checkpoint(fresh / "checkpoint.pt")["history"]
    assert len(resumed["train_loss"]) > len(first["train_loss"])
    for key in ("train_loss", "val_loss", "best_epoch", "stopped"):
        assert resumed[key] == reference[key], key
    metrics = [json.loads((out / "metrics.json").read_text()) for out in (stopped, fresh)]
    assert metrics[0]["test_log_likelihood"] == metrics[1]["test_log_likelihood"]


def test_a_finite_but_exploded_loss_is_divergence_in_one_line_without_warnings(tmp_path):
    out = tmp_path / "exploded"
    env = {key: value for key, value in ENV.items() if key != "PYTHONWARNINGS"}
    for lr in ("1e4", "1e5"):  # 1e4: finite losses of 1e35; 1e5: NaN, after Pyro's warnings
        done = subprocess.run(
            [EXE, "fit", "vae", "--lr", lr, "--epochs", "3", "--out", str(out), *TINY],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert done.returncode == 1, done.stderr
        line = one_line(done.stderr)
        assert "training diverged" in line and "Warning" not in done.stderr
        assert not (out / "metrics.json").exists()


def test_a_bom_csv_without_header_keeps_every_row(tmp_path):
    rows = np.random.default_rng(0).random((300, 3))
    text = "\n".join(",".join(f"{v:.6f}" for v in row) for row in rows) + "\n"
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    data = load_dataset(tmp_path / "bom.csv", val_fraction=0.0, test_fraction=0.0)
    assert len(data.train) == 300
    assert np.allclose(np.sort(data.train.x.numpy(), 0), np.sort(rows, 0), atol=1e-6)


@pytest.mark.parametrize(
    "content, message",
    [
        ("0.1,0.2,O.3\n0.4,0.5,0.6\n0.7,0.8,0.9\n0.1,0.1,0.1\n", "line 1 mixes numbers and text"),
        (bytes(range(256)) * 3, "is not a text CSV file"),
    ],
)
def test_a_csv_that_would_lose_its_first_row_or_is_not_text_is_one_line(
    content, message, tmp_path, capsys
):
    path = tmp_path / "random.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert main(["fit", "vae", "--data", str(path), "--out", str(tmp_path / "o"), *TINY[2:]]) == 2
    line = one_line(capsys.readouterr().err)
    assert message in line and str(path) in line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_run_files_follow_the_umask(umask, tmp_path):
    out = tmp_path / "modes"
    previous = os.umask(umask)
    try:
        assert main(["fit", "vae", "--epochs", "1", "--out", str(out), *TINY]) == 0
    finally:
        os.umask(previous)
    files = [p for p in out.iterdir() if p.is_file()]
    assert {"checkpoint.pt", "metrics.json", "curves.png"} <= {p.name for p in files}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path.name


def test_a_rewritten_file_keeps_its_mode(tmp_path):
    from pyromix.rundir import write_atomically

    path = tmp_path / "kept.json"
    path.write_text("{}")
    path.chmod(0o640)
    write_atomically(path, lambda f: f.write(b"[]"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and path.read_text() == "[]"


def _long(tmp_path):
    return str(tmp_path / ("a" * 300))


@pytest.mark.parametrize(
    "argv, message",
    [
        (lambda t: ["fit", "vae", "--out", _long(t)], "is 300 bytes; the file system allows"),
        (lambda t: ["fit", "vae", "--out", str(t / "dangling")], "which does not exist"),
        (lambda t: ["fit", "vae", "--out", str(t / "loop")], "is a symlink loop"),
        (lambda t: ["fit", "vae", "--out", str(t / "loop" / "x")], "is a symlink loop"),
        (lambda t: ["fit", "vae", "--out", ""], "out: expected a folder name, got ''"),
        (lambda t: ["fit", "vae", "--out", "/proc/x"], "out: cannot write in '/proc'"),
        (lambda t: ["sample", "RUN", "--out", "/proc/x.png"], "out: cannot write in '/proc'"),
        (lambda t: ["sample", "RUN", "--out", str(t / ("b" * 250)) + ".png"], "the file system"),
        (lambda t: ["compare", "RUN", "RUN", "--json", "/proc/x.json"], "--json: cannot write"),
    ],
)
def test_output_paths_are_refused_before_any_work(
    argv, message, trained, tmp_path, monkeypatch, capsys
):
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / "loop").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop")
    monkeypatch.chdir(tmp_path)
    for name in ("prepare_recipe", "generate", "load_run"):  # none of the work may start
        monkeypatch.setattr(pyromix.runs, name, _forbidden)
    monkeypatch.setattr("pyromix.compare.evaluate_runs", _forbidden)
    before = sorted(tmp_path.iterdir())
    args = [str(trained) if a == "RUN" else a for a in argv(tmp_path)]
    assert main([*args, *(TINY if args[0] == "fit" else [])]) == 2
    assert message in one_line(capsys.readouterr().err)
    assert sorted(tmp_path.iterdir()) == before
    assert not Path("runs").exists()


def _forbidden(*args, **kwargs):
    raise AssertionError("work started before the paths were checked")


def _write_plugin(tmp_path, text):
    path = tmp_path / "plug.py"
    path.write_text(text)
    return path


_IMPORT_ERROR = ("raise RuntimeError('plugin broke at import time')\n", "raised RuntimeError(")
_SYNTAX_ERROR = ("def f(:\n    pass\n", "plug.py, line 1: invalid syntax; expected valid Python")
# A module registers nothing by itself, so a builder that returns None is a file's case only.
_NO_PROGRAMS = (
    "from dataclasses import replace\nfrom pyromix.recipes import RECIPES\n"
    "NONE = replace(RECIPES['vae'], build=lambda args: None)\n",
    "its build returned None; expected (model, guide)",
)


@pytest.mark.parametrize(
    "how, text, message",
    [
        *(("file", *case) for case in (_IMPORT_ERROR, _SYNTAX_ERROR, _NO_PROGRAMS)),
        *(("plugin", *case) for case in (_IMPORT_ERROR, _SYNTAX_ERROR)),
    ],
)
def test_a_broken_plugin_is_exit_2_naming_its_file(how, text, message, tmp_path, capsys):
    path = _write_plugin(tmp_path, text)
    out = str(tmp_path / "o")
    if how == "file":
        argv = ["fit", f"{path}:NONE", "--out", out, "--epochs", "1", *TINY]
    else:
        argv = ["list", "--plugin", "plug"]
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        assert main(argv) == 2
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("plug", None)
    line = one_line(capsys.readouterr().err)
    assert message in line and str(path) in line
    assert not (tmp_path / "o").exists()


def test_three_points_write_the_report_without_the_pca_plot(tmp_path, capsys):
    np.save(tmp_path / "three.npy", np.random.default_rng(0).random((3, 4)))
    out = tmp_path / "three"
    argv = ["fit", "vae", "--data", str(tmp_path / "three.npy"), "--out", str(out)]
    argv += ["--latent-dim", "3", "--epochs", "1", "--hidden", "8", "--samples", "10", "--quiet"]
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_points"] == 1 and "at least 2" in metrics["skipped"]["latents"]
    assert not (out / "latents.png").exists() and (out / "samples.png").exists()


@pytest.mark.parametrize(
    "extra, status, message",
    [
        (["--beta", "1e308"], 2, "beta: expected a number in [0, 3.4e+38], got '1e308'"),
        (["--beta", "1e38"], 1, "the objective overflows at a KL weight of 1e+38; lower --beta"),
        (["--seed", "1180591620717411303424"], 2, "--seed: expected an integer in [0, 4294967295]"),
    ],
)
def test_messages_name_the_setting_at_fault(extra, status, message, tmp_path, capsys):
    argv = ["fit", "vae", "--epochs", "1", "--warmup", "0", "--out", str(tmp_path / "m")]
    assert main([*argv, *TINY, *extra]) == status
    line = one_line(capsys.readouterr().err)
    assert message in line and "standardise" not in line


def test_a_full_disk_during_a_checkpoint_says_so_and_keeps_the_old_one(
    run_copy, monkeypatch, capsys
):
    before = (run_copy / "checkpoint.pt").read_bytes()

    def full(payload, f):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . file write failed")

    monkeypatch.setattr(pyromix.train.checkpoint.torch, "save", full)
    monkeypatch.setattr(
        "pyromix.rundir.shutil.disk_usage", lambda path: shutil._ntuple_diskusage(10, 10, 0)
    )
    argv = ["fit", "vae", "--resume", "--epochs", "2", "--out", str(run_copy), *TINY]
    assert main(argv) == 1
    line = one_line(capsys.readouterr().err)
    assert "no space left on the device" in line and "the previous checkpoint.pt is intact" in line
    assert "continue with: pyromix fit vae --resume" in line
    assert (run_copy / "checkpoint.pt").read_bytes() == before
    assert not list(run_copy.glob("*.tmp"))


def test_compare_accepts_checkpoint_files(trained, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(trained, other)
    files = [str(run / "checkpoint.pt") for run in (trained, other)]
    assert main(["compare", *files, "--samples", "10"]) == 0
    assert str(trained) in capsys.readouterr().out


@pytest.mark.parametrize("value, shown", [("0", False), ("", False), ("1", True)])
def test_pyromix_traceback_0_hides_the_traceback(value, shown, run_copy, monkeypatch, capsys):
    monkeypatch.setenv("PYROMIX_TRACEBACK", value)
    monkeypatch.setattr(pyromix.runs, "evaluate_run", _broken)
    argv = ["evaluate", str(run_copy), "--samples", "10"]
    if shown:
        with pytest.raises(KeyError):
            main(argv)
    else:
        assert main(argv) == 1
        assert "KeyError" in one_line(capsys.readouterr().err)


def _broken(*args, **kwargs):
    raise KeyError("unexpected")
