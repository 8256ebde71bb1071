"""Labels in evaluation, validation as training sees labels, restore_best on reload, and global
latents, each against a hand-written answer."""

import dataclasses
import math

import pyro.distributions as dist
import pytest
import torch

from pyromix.compare import evaluate_runs
from pyromix.evaluable import CONDITIONAL, JOINT, PREDICTIVE
from pyromix.importance import SiteError
from pyromix.recipes import available_recipes, get_recipe, register_recipe, unregister_recipe
from pyromix.runs import evaluate_points, evaluate_run, load_run, prepare_recipe, train_recipe
from pyromix.train import load_checkpoint

from evaluation_recipes import RECIPES, labelled_data

SMALL = dict(epochs=1, batch_size=20, seed=0)


@pytest.fixture(autouse=True)
def recipes():
    """This file's recipes, registered for each test and removed after it."""
    names = [*RECIPES, "vae-last"]
    for name, recipe in RECIPES.items():
        register_recipe(name, recipe)
    yield
    for name in names:
        if name in available_recipes():
            unregister_recipe(name)


def test_revealed_labels_score_log_p_x_y_as_written_by_hand():
    x, y = labelled_data()
    run = prepare_recipe("cvae-lg", x, labels=y)
    metrics, ll = _points(run, "revealed")
    test = run.dataset.test
    with torch.no_grad():
        by_hand = run.model.log_px_given_y(test.x, test.y) + math.log(1.0 / 3)
    assert torch.allclose(ll.log_px, by_hand, atol=1e-4)
    assert metrics["quantity"] == JOINT and JOINT in metrics["footing"]
    # hidden: y summed out exactly, log sum_y p(x, y)
    metrics, ll = _points(run, "hidden")
    with torch.no_grad():
        every = [run.model.log_px_given_y(test.x, torch.full_like(test.y, k)) for k in range(3)]
    by_hand = torch.logsumexp(torch.stack(every), 0) + math.log(1.0 / 3)
    assert torch.allclose(ll.log_px, by_hand, atol=1e-4)
    assert metrics["footing"] == "density" and metrics["summed_sites"] == ["y_unobserved"]


def _points(run, mode, samples=3):
    return evaluate_points(run, samples, eval_labels=mode)


def test_compare_refuses_revealed_against_hidden_labels_naming_both(tmp_path):
    x, y = labelled_data()
    a, b = tmp_path / "hidden", tmp_path / "revealed"
    train_recipe("cvae-lg", x, labels=y, out=a, progress=False, **SMALL)
    train_recipe("cvae-lg", x, labels=y, out=b, progress=False, eval_labels="revealed", **SMALL)
    with pytest.raises(ValueError, match=r"not comparable.*'.*hidden' is scored with its test "
                       r"labels hidden, '.*revealed' is scored with its test labels revealed"):
        evaluate_runs([a, b], 3, data=x)


def test_input_only_labels_are_refused_before_training_unless_all_revealed_and_scored_so():
    x, y = labelled_data()
    for settings in ({"labeled": 0.5}, {"labeled": 1.0}):
        with pytest.raises(ValueError, match="no site for a hidden y"):
            prepare_recipe("cvae-input", x, labels=y, **settings)
    run = prepare_recipe("cvae-input", x, labels=y, labeled=1.0, eval_labels="revealed")
    metrics, ll = _points(run, "revealed")
    test = run.dataset.test
    with torch.no_grad():
        by_hand = run.model.log_px_given_y(test.x, test.y)
    assert torch.allclose(ll.log_px, by_hand, atol=1e-4)
    assert metrics["quantity"] == CONDITIONAL
    with pytest.raises(ValueError, match="eval_labels: 'revealed' needs a model and guide"):
        prepare_recipe("vae", x, labels=y, eval_labels="revealed", hidden=[8])


def test_validation_reveals_labels_only_when_training_reveals_every_one():
    x, y = labelled_data()
    every = prepare_recipe("cvae-lg", x, labels=y, labeled=1.0).dataset
    assert bool(every.val.labeled.all()) and not bool(every.test.labeled.any())
    some = prepare_recipe("cvae-lg", x, labels=y, labeled=0.5).dataset
    assert not bool(some.val.labeled.any())


class Spoil:
    """A step hook that sets the model's weights to 1 in the last epoch, so the last epoch's
    weights are far worse than the best epoch's."""

    def __init__(self, epochs):
        self.epochs = epochs

    def __call__(self, state):
        if state.epoch == self.epochs - 1:
            with torch.no_grad():
                for p in state.model.parameters():
                    p.fill_(1.0)

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def test_a_run_that_keeps_its_last_weights_is_evaluated_with_them(tmp_path):
    last = dataclasses.replace(
        get_recipe("vae"),
        restore_best=False,
        step_hooks=lambda model, guide, data, args: [Spoil(args["epochs"])],
    )
    register_recipe("vae-last", last)
    out = tmp_path / "run"
    run = train_recipe(
        "vae-last", "digits", out=out, progress=False, epochs=3, hidden=[16], limit=100
    )
    assert run.history.best_epoch < 2  # the spoilt last epoch is not the best
    fitted = evaluate_run(run, 30)
    saved = load_checkpoint(out / "checkpoint.pt")
    assert saved["restore_best"] is False and saved["weights_epoch"] == 3
    reloaded = load_run(out)
    assert evaluate_run(reloaded, 30)["test_log_likelihood"] == fitted["test_log_likelihood"]
    assert fitted["weights_epoch"] == 3
    for key, value in reloaded.model.state_dict().items():
        assert torch.equal(value, saved["state"]["model"][key])
    resumed = train_recipe("vae-last", out=out, resume=True, progress=False)
    assert evaluate_run(resumed, 30)["test_log_likelihood"] == fitted["test_log_likelihood"]


def test_a_global_latent_is_announced_before_training_and_scored_as_a_predictive_density():
    x, _ = labelled_data(d=1)
    with pytest.warns(UserWarning, match="held-out predictive"):
        run = prepare_recipe("global-lg", x)
    # q(theta) at the exact posterior of the training split: the predictive density in closed form
    train = run.dataset.train.x
    var = 1.0 / (1.0 + len(train))
    mean = var * train.sum(0)
    with torch.no_grad():
        run.guide.loc.copy_(mean)
        run.guide.raw_scale.fill_(0.5 * math.log(var))
    metrics, ll = _points(run, "hidden", 4000)
    exact = dist.Normal(mean, math.sqrt(1 + var)).to_event(1).log_prob(run.dataset.test.x)
    assert torch.allclose(ll.log_px, exact, atol=0.03)
    assert metrics["quantity"] == PREDICTIVE and metrics["global_sites"] == ["theta"]


def test_a_global_factor_is_refused_before_the_first_training_step(tmp_path, monkeypatch):
    x, _ = labelled_data(d=1)
    steps = []
    monkeypatch.setattr("pyromix.runs.training.fit", lambda *a, **k: steps.append(1))
    with pytest.raises(SiteError, match="site 'penalty' is an observation or factor outside"):
        train_recipe("global-factor", x, out=tmp_path / "run", progress=False, **SMALL)
    assert not steps and not (tmp_path / "run" / "checkpoint.pt").exists()


def test_cli_records_the_label_choice_and_evaluate_overrides_it(tmp_path, capsys):
    import json

    import numpy as np

    from pyromix.cli import main

    x, y = labelled_data()
    data, out = tmp_path / "data.npz", tmp_path / "run"
    np.savez(data, x=x, y=y)
    fit = ["fit", "cvae-lg", "--data", str(data), "--epochs", "1", "--samples", "3"]
    assert main([*fit, "--eval-labels", "revealed", "--out", str(out)]) == 0
    revealed = json.loads((out / "metrics.json").read_text())
    assert revealed["eval_labels"] == "revealed" and revealed["quantity"] == JOINT
    assert main(["evaluate", str(out), "--samples", "3", "--eval-labels", "hidden"]) == 0
    hidden = json.loads((out / "metrics.json").read_text())
    assert hidden["footing"] == "density" and hidden["summed_sites"] == ["y_unobserved"]
    assert hidden["test_log_likelihood"] > revealed["test_log_likelihood"]  # p(x) >= p(x, y)
