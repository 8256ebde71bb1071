"""Restarts: R short starts, the best by validation loss trained on; reproducible; label-blind."""

import json

import numpy as np
import pytest
import torch

from pyromix.cli import main
from pyromix.data import load_dataset
from pyromix import restarts as restarts_module
from pyromix.restarts import choose_start, restart_epochs, start_seeds, train_restarts
from pyromix.runs import prepare_recipe, train_run

TINY = dict(hidden=[16], latent_dim=2, epochs=10, pretrain_epochs=2, limit=80)
FLAGS = ["--hidden", "16", "--latent-dim", "2", "--epochs", "10", "--pretrain-epochs", "2"]


def _fit(out, *extra):
    argv = ["fit", "gmvae", "--out", str(out), "--quiet", "--samples", "2", "--limit", "80"]
    assert main([*argv, *FLAGS, "--restarts", "3", *extra]) == 0
    return json.loads((out / "metrics.json").read_text())


def test_restarts_keep_the_best_start_by_validation_loss_and_repeat(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first, second = _fit(tmp_path / "a"), _fit(tmp_path / "b")
    starts = first["restarts"]
    assert [s["start"] for s in starts] == [0, 1, 2]
    assert [s["seed"] for s in starts] == start_seeds(0, 3)
    losses = [s["val_loss"] for s in starts]
    assert len(set(losses)) == 3  # the starts differ, so the choice means something
    assert all("warnings" in s and "active_units" in s for s in starts)
    healthy = [r for r in range(3) if not starts[r]["warnings"]] or [0, 1, 2]
    chosen = min(healthy, key=lambda r: losses[r])
    assert [s["chosen"] for s in starts] == [r == chosen for r in range(3)]
    assert all(s["epochs"] == restart_epochs(10) == 1 for s in starts)
    saved = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)
    history = saved["history"]
    assert len(history["val_loss"]) == 10  # the winner trained on to the end
    assert history["val_loss"][0] == losses[chosen]  # ... from the start it was scored as
    args = saved["recipe"]["args"]
    assert args["seed"] == 0 and args["start_seed"] == starts[chosen]["seed"]
    again = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)
    for key, value in saved["best"]["guide"].items():
        assert torch.equal(value, again["best"]["guide"][key]), key
    volatile = {"train_seconds", "restarts", "capture"}
    assert {k: v for k, v in first.items() if k not in volatile} == {
        k: v for k, v in second.items() if k not in volatile
    }
    assert [s["val_loss"] for s in second["restarts"]] == losses


def test_choose_start_skips_collapsed_starts_unless_all_collapsed():
    warned = ["collapsed mixture: 2.0 effective clusters of 10"]
    records = [
        {"val_loss": 1.0, "warnings": warned},
        {"val_loss": 3.0, "warnings": []},
        {"val_loss": 2.0, "warnings": []},
    ]
    assert choose_start(records) == 2
    assert choose_start([{**r, "warnings": warned} for r in records]) == 0
    assert choose_start([{**r, "warnings": []} for r in records]) == 0


def test_a_collapsed_start_with_the_lowest_loss_is_passed_over(monkeypatch):
    probe = train_restarts(prepare_recipe("gmvae", "digits", **TINY), 3, progress=False)
    lowest = min(s["val_loss"] for s in probe.restarts)
    real = restarts_module.start_diagnostics

    def collapse_the_lowest(start):  # the start with the lowest loss collapsed, the others not
        found = real(start)
        found["warnings"] = []
        if start.history.val_loss[-1] == lowest:
            found["warnings"] = ["collapsed mixture: constructed for this test"]
        return found

    monkeypatch.setattr(restarts_module, "start_diagnostics", collapse_the_lowest)
    run = train_restarts(prepare_recipe("gmvae", "digits", **TINY), 3, progress=False)
    losses = [s["val_loss"] for s in run.restarts]
    assert losses == [s["val_loss"] for s in probe.restarts]  # the same starts, repeatable
    chosen = [s["chosen"] for s in run.restarts].index(True)
    assert losses[chosen] == min(v for v in losses if v != lowest) != lowest
    assert run.history.val_loss[0] == losses[chosen]  # trained on from the healthy start


def test_one_restart_is_the_plain_run(tmp_path):
    plain = train_run(prepare_recipe("gmvae", "digits", **TINY), progress=False)
    one = train_restarts(prepare_recipe("gmvae", "digits", **TINY), 1, progress=False)
    assert plain.history.val_loss == one.history.val_loss and one.restarts == []


def test_restarts_never_read_labels(tmp_path):
    data = load_dataset("digits", limit=80)
    x = torch.cat([data.train.x, data.val.x, data.test.x]).numpy()
    y = torch.cat([data.train.y, data.val.y, data.test.y]).numpy()
    permuted = np.random.default_rng(0).permutation(y)
    assert (permuted != y).any()
    chosen = []
    for labels in (y, permuted):
        run = prepare_recipe("gmvae", x, labels=labels, **{**TINY, "limit": None})
        run = train_restarts(run, 3, progress=False)
        chosen.append([(s["seed"], s["val_loss"], s["chosen"]) for s in run.restarts])
    assert chosen[0] == chosen[1]


def test_restarts_refuse_bad_input_before_training():
    run = prepare_recipe("gmvae", "digits", **TINY)
    with pytest.raises(ValueError, match="restarts: expected an integer >= 1, got 0"):
        train_restarts(run, 0)
    with pytest.raises(ValueError, match=r"epochs: expected an integer in \[1, 10\], got 11"):
        train_restarts(run, 2, epochs=11)
    gan = prepare_recipe("gan", "digits", epochs=2, limit=40)
    with pytest.raises(ValueError, match="restarts: the gan recipe's validation loss"):
        train_restarts(gan, 2)


def test_estimator_n_init_records_the_starts_and_checks_its_value():
    from pyromix.estimators import MixtureClustering

    rng = np.random.default_rng(0)
    X = np.clip(np.repeat(np.eye(3), 20, 0) + 0.05 * rng.normal(size=(60, 3)), 0, 1)
    options = dict(n_clusters=3, latent_dim=2, hidden=(8,), epochs=4, pretrain_epochs=1)
    est = MixtureClustering(n_init=2, likelihood="gaussian", **options).fit(X)
    losses = [s["val_loss"] for s in est.restarts_]
    assert len(losses) == 2 and [s["chosen"] for s in est.restarts_] == [
        r == int(np.argmin(losses)) for r in range(2)
    ]
    assert "effective_clusters" in est.diagnostics_ and "warnings" in est.diagnostics_
    with pytest.raises(ValueError, match="n_init: expected an integer >= 1, got 0"):
        MixtureClustering(n_init=0, **options).fit(X)
