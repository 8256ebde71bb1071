"""config.json: written with every run, read back by --resume and compare."""

import json
import sys

import numpy as np
import pytest
import torch

import pyromix
from pyromix.cli import main
from pyromix.identity import file_digest
from pyromix.run_config import read_config, version_changes, write_config

FAST = ["--epochs", "1", "--samples", "10", "--hidden", "8", "--quiet"]


def test_a_run_writes_its_configuration_and_versions(tmp_path):
    data = tmp_path / "points.npy"
    np.save(data, np.random.default_rng(0).random((80, 5)).astype("float32"))
    out = tmp_path / "run"
    assert main(["fit", "vae", "--data", str(data), "--out", str(out), "--latent-dim", "3", *FAST]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config == read_config(out)
    assert config["recipe"] == "vae" and config["recipe_origin"]["kind"] == "builtin"
    args = config["arguments"]
    assert args["latent_dim"] == 3 and args["epochs"] == 1 and args["hidden"] == [8]
    assert args["data"] == str(data.resolve()) and args["data_sha256"] == file_digest(data)
    software = config["software"]
    assert software["torch"] == torch.__version__ and software["pyromix"] == pyromix.__version__
    assert software["python"] == ".".join(map(str, sys.version_info[:3]))
    assert version_changes(config) == []


def test_resume_with_a_changed_argument_names_it_and_other_software_is_said(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["fit", "vae", "--data", "onehot", "--out", str(out), *FAST]) == 0
    capsys.readouterr()
    assert main(["fit", "vae", "--data", "onehot", "--out", str(out), "--resume",
                 "--latent-dim", "5", *FAST]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "latent_dim=5 (the run has 2)" in err
    config = read_config(out)
    config["software"]["torch"] = "1.0.0"  # as if trained with another torch
    (out / "config.json").write_text(json.dumps(config))
    with pytest.warns(UserWarning, match=r"other software \(torch 1.0.0 -> "):
        assert main(["fit", "vae", "--data", "onehot", "--out", str(out), "--resume",
                     "--epochs", "2", "--samples", "10", "--hidden", "8", "--quiet"]) == 0
    resumed = read_config(out)
    assert resumed["arguments"]["epochs"] == 2 and resumed["trained_with"]["torch"] == "1.0.0"
    assert resumed["software"]["torch"] == torch.__version__


def test_compare_says_when_runs_were_trained_with_other_software(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        assert main(["fit", "vae", "--data", "onehot", "--out", str(out), *FAST]) == 0
    config = read_config(b)
    config["software"]["pyro"] = "0.1"
    write_config(b, config)
    with pytest.warns(UserWarning, match=r"other software than '.*/a': '.*/b' \(pyro .* -> 0\.1\)"):
        assert main(["compare", str(a), str(b), "--samples", "30"]) == 0


def test_a_corrupt_config_is_named(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="config: .*config.json' is not a pyromix config.json"):
        read_config(tmp_path)
