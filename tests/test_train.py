"""The training loop: resume, checkpoints, NaN guard, early stopping, validation, repeatability."""

import math

import pytest
import torch
from pyro.infer import Trace_ELBO, TraceMeanField_ELBO
from torch import nn

import pyromix.train
from pyromix.data import load_dataset
from pyromix.infer import KLWarmup
from pyromix.recipes import COMMON_DEFAULTS, RECIPES
from pyromix.train import TrainingDiverged, evaluate_loss, fit, load_checkpoint


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", binarize="static", limit=150)


def build(seed=0, hidden=(32,)):
    torch.manual_seed(seed)
    args = {
        **COMMON_DEFAULTS,
        "hidden": list(hidden),
        "latent_dim": 4,
        "data_dim": 64,
        "image_shape": (8, 8),
    }
    return RECIPES["vae"].build(args)


def params(*modules):
    return [p.detach().clone() for m in modules for p in m.parameters()]


def test_fit_lowers_the_loss_and_records_history(digits):
    model, guide = build()
    history = fit(model, guide, digits, TraceMeanField_ELBO(), epochs=6, progress=False)
    assert history.epochs == 6 and len(history.val_loss) == 6 and history.kl_weight == [1.0] * 6
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.val_loss[-1] < history.val_loss[0]
    assert history.best_epoch == min(range(6), key=history.val_loss.__getitem__)


def test_same_seed_same_run(digits):
    runs = []
    for _ in range(2):
        model, guide = build()
        runs.append(
            (
                fit(model, guide, digits, Trace_ELBO(), epochs=2, seed=5, progress=False),
                params(model, guide),
            )
        )
    assert runs[0][0].train_loss == runs[1][0].train_loss
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))


def test_resume_continues_exactly_where_an_uninterrupted_run_would_be(digits, tmp_path):
    options = dict(epochs=4, seed=1, progress=False, kl_weight=KLWarmup(3))
    model, guide = build()
    straight = fit(model, guide, digits, Trace_ELBO(), checkpoint=tmp_path / "a.pt", **options)

    model, guide = build()
    fit(
        model, guide, digits, Trace_ELBO(), checkpoint=tmp_path / "b.pt", **{**options, "epochs": 2}
    )
    model, guide = build(seed=123)  # fresh weights: everything must come from the checkpoint
    resumed = fit(
        model, guide, digits, Trace_ELBO(), checkpoint=tmp_path / "b.pt", resume=True, **options
    )

    assert resumed.train_loss == pytest.approx(straight.train_loss, rel=1e-6)
    assert resumed.kl_weight == straight.kl_weight == [0.0, 1 / 3, 2 / 3, 1.0]
    a, b = load_checkpoint(tmp_path / "a.pt"), load_checkpoint(tmp_path / "b.pt")
    for key in a["state"]["model"]:
        assert torch.allclose(a["state"]["model"][key], b["state"]["model"][key], atol=1e-6)


def test_checkpoint_holds_best_weights_and_recipe(digits, tmp_path):
    model, guide = build()
    history = fit(
        model,
        guide,
        digits,
        TraceMeanField_ELBO(),
        epochs=3,
        progress=False,
        checkpoint=tmp_path / "c.pt",
        recipe={"name": "vae", "args": {"x": 1}},
    )
    saved = load_checkpoint(tmp_path / "c.pt")
    assert saved["recipe"] == {"name": "vae", "args": {"x": 1}} and saved["epoch"] == 3
    assert saved["history"]["train_loss"] == history.train_loss
    assert all(torch.equal(saved["best"]["model"][k], v) for k, v in model.state_dict().items())


class FailsAt:
    """A Trace_ELBO whose training loss turns NaN at a given call."""

    def __init__(self, call):
        self.elbo, self.call, self.calls = TraceMeanField_ELBO(), call, 0

    def loss(self, model, guide, x):
        return self.elbo.loss(model, guide, x)

    def loss_and_grads(self, model, guide, x):
        self.calls += 1
        loss = self.elbo.loss_and_grads(model, guide, x)
        return math.nan if self.calls >= self.call else loss


def test_nan_loss_stops_with_the_epoch_and_keeps_the_last_good_state(digits, tmp_path):
    steps_per_epoch = math.ceil(len(digits.train) / 100)
    model, guide = build()
    assert steps_per_epoch >= 2  # fail after a step of epoch 3 has already moved the parameters
    with pytest.raises(TrainingDiverged, match=r"epoch 3, step 2.*end of epoch 2") as error:
        fit(
            model,
            guide,
            digits,
            FailsAt(2 * steps_per_epoch + 2),
            epochs=5,
            progress=False,
            checkpoint=tmp_path / "n.pt",
            restore_best=False,
        )
    saved = load_checkpoint(tmp_path / "n.pt")
    assert (
        error.value.history.epochs == 2
        and saved["history"]["train_loss"] == error.value.history.train_loss
    )
    assert all(torch.equal(saved["state"]["model"][k], v) for k, v in model.state_dict().items())


class NaNGradientAt(FailsAt):
    """A finite loss whose gradient has a NaN from a given call on, as a collapsed std gives."""

    def __init__(self, call, module):
        super().__init__(call)
        self.module = module

    def loss_and_grads(self, model, guide, x):
        self.calls += 1
        loss = self.elbo.loss_and_grads(model, guide, x)
        if self.calls >= self.call:
            next(self.module.parameters()).grad[0] = math.nan
        return loss


def test_nan_gradient_with_a_finite_loss_stops_with_the_epoch_restored(digits):
    steps_per_epoch = math.ceil(len(digits.train) / 100)
    model, guide = build()
    objective = NaNGradientAt(steps_per_epoch + 1, guide)
    # The NaN reaches the weights in step 1 of epoch 2; step 2 fails on them.
    with pytest.raises(TrainingDiverged, match=r"non-finite parameters.* at epoch 2, step 2"):
        fit(model, guide, digits, objective, epochs=3, progress=False, restore_best=False)
    assert all(torch.isfinite(p).all() for p in params(model, guide))


def test_errors_with_finite_parameters_pass_through_unchanged(digits):
    class Broken(FailsAt):
        def loss_and_grads(self, model, guide, x):
            raise ValueError("bad batch")

    model, guide = build()
    with pytest.raises(ValueError, match="bad batch"):
        fit(model, guide, digits, Broken(1), epochs=1, progress=False)


class RisingValidation:
    """Validation loss that only gets worse: early stopping must trigger."""

    def __init__(self):
        self.elbo, self.val = TraceMeanField_ELBO(), 0.0

    def loss(self, model, guide, x):
        self.val += 1.0
        return self.val * x.shape[0]

    def loss_and_grads(self, model, guide, x):
        return self.elbo.loss_and_grads(model, guide, x)


def test_early_stopping_waits_for_patience_and_for_the_end_of_warmup(digits):
    model, guide = build()
    history = fit(model, guide, digits, RisingValidation(), epochs=20, patience=2, progress=False)
    assert history.epochs == 3 and history.best_epoch == 0 and "early stopping" in history.stopped
    model, guide = build()
    history = fit(
        model,
        guide,
        digits,
        RisingValidation(),
        epochs=20,
        patience=2,
        kl_weight=KLWarmup(5),
        progress=False,
    )
    assert history.epochs == 6  # epochs 0-4 are warm-up; epoch 5 is the first counted


def test_validation_leaves_parameters_and_modes_alone(digits):
    model, guide = build()
    guide.encoder.body.append(nn.Dropout(0.5))
    before = params(model, guide)
    first = evaluate_loss(model, guide, TraceMeanField_ELBO(), digits.val)
    assert guide.training and model.training
    assert all(torch.equal(a, b) for a, b in zip(before, params(model, guide)))
    torch.manual_seed(9)
    again = evaluate_loss(model, guide, TraceMeanField_ELBO(), digits.val)
    assert math.isfinite(first) and abs(first - again) < 5.0  # same scale: dropout off


def test_a_crash_while_writing_keeps_the_previous_checkpoint(digits, tmp_path, monkeypatch):
    model, guide = build()
    fit(
        model,
        guide,
        digits,
        TraceMeanField_ELBO(),
        epochs=1,
        progress=False,
        checkpoint=tmp_path / "k.pt",
    )

    def crash(payload, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(pyromix.train.checkpoint.torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        fit(
            model,
            guide,
            digits,
            TraceMeanField_ELBO(),
            epochs=3,
            progress=False,
            checkpoint=tmp_path / "k.pt",
            resume=True,
        )
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "k.pt")["history"]["train_loss"].__len__() == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.pt"]


def test_bad_checkpoints_and_arguments_get_clear_errors(digits, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"some": "dict"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a pyromix-checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    model, guide = build()
    with pytest.raises(ValueError, match="epochs >= 1"):
        fit(model, guide, digits, Trace_ELBO(), epochs=0)
    with pytest.raises(ValueError, match="resume=True needs"):
        fit(model, guide, digits, Trace_ELBO(), resume=True)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda"):
            fit(model, guide, digits, Trace_ELBO(), device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fit_on_cuda_moves_modules_and_data(digits):
    model, guide = build()
    history = fit(
        model, guide, digits, TraceMeanField_ELBO(), epochs=2, device="cuda", progress=False
    )
    assert next(model.parameters()).is_cuda and math.isfinite(history.val_loss[-1])
