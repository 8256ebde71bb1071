"""A run records its data file by resolved path and SHA-256: moved files are found through
``--data`` when their content matches, and changed ones are refused, by evaluate, sample and
``--resume`` alike, before any work."""

import hashlib
import json
import shutil

import numpy as np
import pytest

import pyromix.runs
from pyromix.cli import main
from pyromix.data import DataError
from pyromix.identity import file_digest, locate_data, record_data
from pyromix.train import load_checkpoint

TINY = ["--hidden", "8", "--samples", "10", "--quiet", "--epochs", "1"]


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def relative_run(tmp_path, monkeypatch):
    """A run fitted on ``points.npy`` given as a relative path, from ``tmp_path/work``."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    np.save("points.npy", np.random.default_rng(0).random((60, 4)).astype(np.float32))
    assert main(["fit", "vae", "--data", "points.npy", "--out", "run", *TINY]) == 0
    return work


def test_fit_records_the_resolved_path_and_the_files_sha256(relative_run):
    args = load_checkpoint(relative_run / "run" / "checkpoint.pt")["recipe"]["args"]
    data = relative_run / "points.npy"
    assert args["data"] == str(data.resolve())
    assert args["data_sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()


def test_a_relative_data_path_is_found_from_another_folder(relative_run, monkeypatch, capsys):
    elsewhere = relative_run.parent / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert main(["evaluate", "../work/run", "--samples", "10"]) == 0
    assert json.loads(capsys.readouterr().out)["test_points"] == 12
    assert main(["fit", "vae", "--out", "../work/run", "--resume", *TINY[:-1], "2"]) == 0


@pytest.mark.parametrize("command", ["evaluate", "sample", "resume"])
def test_a_moved_data_file_is_accepted_when_its_hash_matches(command, relative_run, capsys):
    shutil.move("points.npy", "moved.npy")
    argv = {
        "evaluate": ["evaluate", "run", "--samples", "10"],
        "sample": ["sample", "run", "--out", "s.png", "--n", "4"],
        "resume": ["fit", "vae", "--out", "run", "--resume", *TINY[:-1], "2"],
    }[command]
    assert main(argv) == 2  # the recorded place is empty now
    line = one_line(capsys.readouterr().err)
    assert "points.npy' is not there; pass --data PATH" in line
    assert main([*argv, "--data", "moved.npy"]) == 0
    if command == "resume":  # the run now records where its data is
        args = load_checkpoint(relative_run / "run" / "checkpoint.pt")["recipe"]["args"]
        assert args["data"] == str((relative_run / "moved.npy").resolve())


@pytest.mark.parametrize("command", ["evaluate", "sample", "resume"])
def test_another_file_passed_as_the_runs_data_is_refused(command, relative_run, capsys):
    x = np.load("points.npy")
    x[0, 0] += 0.5
    np.save("other.npy", x)
    before = (relative_run / "run" / "checkpoint.pt").read_bytes()
    argv = {
        "evaluate": ["evaluate", "run", "--samples", "10"],
        "sample": ["sample", "run", "--out", "s.png"],
        "resume": ["fit", "vae", "--out", "run", "--resume", *TINY[:-1], "2"],
    }[command]
    capsys.readouterr()
    assert main([*argv, "--data", "other.npy"]) == 2
    line = one_line(capsys.readouterr().err)
    assert "'other.npy' is not the run's file" in line and "SHA-256" in line
    assert (relative_run / "run" / "checkpoint.pt").read_bytes() == before
    assert not (relative_run / "s.png").exists()


@pytest.mark.parametrize("command", ["evaluate", "resume"])
def test_a_data_file_changed_in_place_is_detected(command, relative_run, monkeypatch, capsys):
    metrics = (relative_run / "run" / "metrics.json").read_bytes()
    checkpoint = (relative_run / "run" / "checkpoint.pt").read_bytes()
    x = np.load("points.npy")
    np.save("points.npy", x[:, :3])  # a changed shape used to fail deep in a network
    called = []
    for module in (pyromix.runs.prepare, pyromix.runs.load):  # resume, and evaluate
        monkeypatch.setattr(module, "_load_data", lambda *a, **k: called.append(a))
    argv = {
        "evaluate": ["evaluate", "run", "--samples", "10"],
        "resume": ["fit", "vae", "--out", "run", "--resume", *TINY[:-1], "2"],
    }[command]
    capsys.readouterr()
    assert main(argv) == 2
    line = one_line(capsys.readouterr().err)
    assert "points.npy' changed since the run was trained" in line
    assert not called  # refused before reading the data
    assert (relative_run / "run" / "metrics.json").read_bytes() == metrics
    assert (relative_run / "run" / "checkpoint.pt").read_bytes() == checkpoint


def test_named_datasets_and_arrays_record_no_hash():
    args = {"data_dir": None}
    record_data(args, "digits", None)
    assert args == {"data": "digits", "data_dir": None}
    array = np.zeros((3, 2))
    assert locate_data({"data": "array"}, array)[0] is array
    with pytest.raises(DataError, match="trained on 'onehot', not 'digits'"):
        locate_data({"data": "onehot"}, "digits")
    with pytest.raises(DataError, match="trained on 'digits', not 'points.npy'"):
        locate_data({"data": "digits"}, "points.npy")  # a file for a named dataset


def test_file_digest_is_the_sha256_of_the_bytes(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b"1,2\n3,4\n")
    assert file_digest(path) == hashlib.sha256(b"1,2\n3,4\n").hexdigest()
    path.write_bytes(b"1,2\n3,5\n")  # same size, at once: nothing is remembered
    assert file_digest(path) == hashlib.sha256(b"1,2\n3,5\n").hexdigest()
