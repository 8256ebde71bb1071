"""fit's faster paths: the unchecked step equals the checked one; checkpoints by the clock."""

import math
import tempfile
from pathlib import Path

import pyro
import pytest
import torch

import pyromix.train
from pyromix.infer.scale import LatentScaleMessenger
from pyromix.recipes import RECIPES, get_recipe
from pyromix.runs import prepare_recipe, train_run
from pyromix.train import load_checkpoint, training_step


def step(objective, model, guide, x, validate):
    for p in [*model.parameters(), *guide.parameters()]:
        p.grad = None
    pyro.set_rng_seed(7)
    weighting = LatentScaleMessenger(0.5)  # as fit runs it, mid warm-up
    loss = training_step(objective, weighting(model), weighting(guide), x, validate=validate)
    grads = {n: p.grad for n, p in [*model.named_parameters(), *guide.named_parameters()]}
    return loss, grads


@pytest.mark.parametrize("name", list(RECIPES))
def test_fast_step_equals_checked_step_on_the_same_draws(name):
    run = prepare_recipe(name, "digits", hidden=[16], limit=40, particles=3)
    x, _ = next(run.dataset.train_batches(8, torch.Generator().manual_seed(0)))
    objective = get_recipe(name).objective(run.args)
    checked_loss, checked = step(objective, run.model, run.guide, x, validate=True)
    fast_loss, fast = step(objective, run.model, run.guide, x, validate=False)
    assert math.isfinite(checked_loss) and fast_loss == pytest.approx(checked_loss, rel=1e-6)
    assert checked.keys() == fast.keys() and any(g is not None for g in checked.values())
    for pname, grad in checked.items():
        if grad is None:  # trained by a step hook, not by the objective
            assert fast[pname] is None, pname
        else:
            torch.testing.assert_close(fast[pname], grad, rtol=1e-6, atol=1e-7, msg=pname)


def test_the_fast_step_really_skips_the_checks():
    # A distribution argument out of its support is refused by the checked step only, which
    # is why fit checks the first step of every run and then trusts the structure it saw.
    run = prepare_recipe("vae", "digits", hidden=[16], limit=40)
    objective = get_recipe("vae").objective(run.args)
    x = torch.full((4, 64), 0.5)  # not binary: outside the Bernoulli likelihood's support
    with pytest.raises(ValueError):
        training_step(objective, run.model, run.guide, x, validate=True)
    assert math.isfinite(training_step(objective, run.model, run.guide, x, validate=False))


@pytest.mark.parametrize("every, written", [(0.0, [1, 2, 3, 4]), (3600.0, [1, 4])])
def test_checkpoints_follow_the_first_epoch_the_clock_and_the_last(every, written, monkeypatch):
    run = prepare_recipe("vae", "digits", hidden=[16], limit=40, epochs=4, patience=None)
    saved = []
    real = pyromix.train.save_checkpoint

    def counting(path, *, history, **kwargs):
        saved.append(history.epochs)
        return real(path, history=history, **kwargs)

    monkeypatch.setattr(pyromix.train.checkpointing, "save_checkpoint", counting)
    with tempfile.TemporaryDirectory() as out:
        train_run(run, out=out, progress=False, checkpoint_every=every)
        resumed = load_checkpoint(Path(out) / "checkpoint.pt")
    assert saved == written and resumed["epoch"] == 4
