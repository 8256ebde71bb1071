"""Labels with Pyro's semantics: revealed where the user says, masked elsewhere, never leaked."""

import math

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import Trace_ELBO
from pyro.nn import PyroModule, PyroParam

from pyromix.cli import main
from pyromix.data import DataError, Dataset, Split, load_dataset
from pyromix.evaluate import bits_per_dim
from pyromix.labels import Batch, accepts_labels, reveal_labels
from pyromix.runs import prepare_recipe
from pyromix.train import evaluate_loss, fit


def test_reveal_is_stratified_deterministic_and_skips_missing():
    y = torch.tensor([0] * 40 + [1] * 40 + [2] * 20 + [-1] * 10)
    mask = reveal_labels(y, 0.1, seed=3)
    assert int(mask.sum()) == 10
    assert [int(mask[y == k].sum()) for k in (0, 1, 2, -1)] == [4, 4, 2, 0]
    assert torch.equal(mask, reveal_labels(y, 10, seed=3))  # a count or a fraction
    assert not torch.equal(mask, reveal_labels(y, 10, seed=4))
    # Largest remainders: 5 of (40, 40, 20) is (2, 2, 1).
    assert [int(reveal_labels(y, 5, 0)[y == k].sum()) for k in (0, 1, 2)] == [2, 2, 1]
    for bad in (101, -1, 0.0, 1.5, "3", True):
        with pytest.raises(ValueError, match=r"labeled: expected an integer in \[0, 100\]"):
            reveal_labels(y, bad, 0)


def test_dataset_reveals_training_labels_only_and_batches_hide_the_rest():
    ds = load_dataset("digits", limit=200)
    assert ds.train.labeled is None  # nothing revealed by default
    revealed = ds.reveal(0.1, seed=0)
    mask = revealed.train.labeled
    assert int(mask.sum()) == 20
    assert not revealed.val.labeled.any() and not revealed.test.labeled.any()
    seen_y, seen_mask = [], []
    for batch in revealed.train_batches(64, torch.Generator().manual_seed(0), labeled=True):
        assert batch.y is not None and bool((batch.y[~batch.y_mask] == 0).all())
        seen_y.append(batch.y), seen_mask.append(batch.y_mask)
    # Every revealed label arrives once, with its true value; no hidden label arrives.
    y, m = torch.cat(seen_y), torch.cat(seen_mask)
    assert int(m.sum()) == 20
    assert sorted(y[m].tolist()) == sorted(ds.train.y[mask].tolist())
    assert [len(b) for b in ds.train_batches(64, labeled=True)] == [64, 64, 64, 8]
    assert all(b.y is None for b in ds.train_batches(64, labeled=True))
    assert ds.reveal(0) is ds
    with pytest.raises(DataError, match="no labels to reveal"):
        Dataset(
            "x", Split(torch.zeros(4, 2)), Split(torch.zeros(1, 2)), Split(torch.zeros(1, 2))
        ).reveal(2)


@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_binarisation_and_bits_per_dim_ignore_labels(mode):
    ds = load_dataset("digits", limit=100).reveal(30, seed=1)
    binary = ds.binarized(mode, seed=0)
    for before, after in zip(ds._splits(), binary._splits()):
        assert torch.equal(before.y, after.y)
        assert torch.equal(before.labeled, after.labeled)
    assert torch.equal(binary.train.labeled, ds.train.labeled)
    assert binary.data_dim == 64  # x's dimensions only
    x, y = next(binary.train_batches(100, torch.Generator().manual_seed(0)))
    assert x.shape == (100, 64) and set(x.unique().tolist()) <= {0.0, 1.0}
    assert bits_per_dim(-64 * math.log(2), binary.data_dim) == pytest.approx(1.0)


def test_user_labels_may_mark_missing_ones():
    x = np.random.default_rng(0).random((60, 3))
    labels = np.array([0, 1, 2, -1] * 15)
    ds = load_dataset(x, labels=labels, val_fraction=0.0, test_fraction=0.0)
    assert ds.num_classes == 3
    revealed = ds.reveal(1.0)
    assert int(revealed.train.labeled.sum()) == 45
    assert bool((revealed.train.y[revealed.train.labeled] >= 0).all())
    with pytest.raises(DataError, match="or -1 for a missing label"):
        load_dataset(x, labels=np.array([0, -2] * 30))


class Recorder(PyroModule):
    """x ~ N(mu, 1) per point, and y ~ Cat(pi) observed where revealed; records every call."""

    def __init__(self, require_labels: bool) -> None:
        super().__init__()
        self.mu = PyroParam(torch.zeros(2))
        self.require_labels, self.calls = require_labels, []

    def forward(self, x, y=None, y_mask=None):
        self.calls.append((x.shape[0], y, y_mask))
        assert (y is not None) == self.require_labels, "labels dropped or leaked"
        with pyro.plate("data", x.shape[0]):
            if y is not None:
                pyro.sample("y", dist.Categorical(logits=torch.zeros(10)), obs=y, obs_mask=y_mask)
            pyro.sample("x", dist.Normal(self.mu, 1.0).to_event(1), obs=x)


class Guide(PyroModule):
    """q(y) uniform where y is hidden: it matches the prior, so each log weight is 0."""

    def forward(self, x, y=None, y_mask=None):
        if y is not None:
            with pyro.plate("data", x.shape[0]), pyro.poutine.mask(mask=~y_mask):
                pyro.sample("y_unobserved", dist.Categorical(logits=torch.zeros(10)))


guide = Guide()


def small(labels=True):
    ds = load_dataset(np.random.default_rng(0).random((50, 2)), labels=np.arange(50) % 10)
    return ds.reveal(10, seed=0) if labels else ds


def test_labels_reach_model_and_guide_in_fit_and_validation():
    model = Recorder(require_labels=True)
    fit(model, guide, small(), Trace_ELBO(), epochs=2, batch_size=8, progress=False)
    # Training calls carry the revealed labels (10 per epoch); validation, with all labels
    # hidden, is called the same way with an all-False mask.
    assert all(c[1] is not None for c in model.calls)
    assert sum(int(m.sum()) for _, _, m in model.calls) == 2 * 10
    assert [int(m.sum()) for n, _, m in model.calls if n == 5] == [0, 0]  # the 5 val points
    with pytest.raises(AssertionError, match="labels dropped"):
        fit(model, guide, small(labels=False), Trace_ELBO(), epochs=1, progress=False)


def test_unsupervised_fit_calls_model_x_only_and_refuses_programs_without_y_mask():
    model = Recorder(require_labels=False)
    fit(model, guide, small(labels=False), Trace_ELBO(), epochs=1, progress=False)
    assert model.calls and all(c[1] is None and c[2] is None for c in model.calls)

    class Plain(PyroModule):
        def forward(self, x, y=None):
            pass

    assert accepts_labels(guide) and accepts_labels(lambda *a, **k: 0)
    assert not accepts_labels(Plain()) and not accepts_labels(Plain().forward)
    with pytest.raises(ValueError, match="guide: labels were revealed .* takes no y_mask"):
        fit(Recorder(True), Plain(), small(), Trace_ELBO(), epochs=1, progress=False)


def test_evaluate_loss_passes_revealed_labels():
    ds = small()
    model = Recorder(require_labels=True)
    split = Split(ds.train.x, ds.train.y, ds.train.labeled)
    loss = evaluate_loss(model, guide, Trace_ELBO(), split)
    # The revealed labels add -log(1/10) each; hidden ones are enumerated out (the guide's
    # y_unobserved matches the prior, so its log weight is 0 for any draw).
    x_term = -dist.Normal(torch.zeros(2), 1.0).to_event(1).log_prob(ds.train.x).sum()
    assert loss == pytest.approx(float(x_term + 10 * math.log(10)) / len(split), rel=1e-6)


def test_unsupervised_recipes_see_no_labels_and_refuse_them():
    run = prepare_recipe("gmvae", "digits", limit=50, epochs=1, hidden=[8], pretrain_epochs=0)
    assert run.dataset.train.labeled is None
    with pytest.raises(ValueError, match="labeled: the vae recipe does not take labels"):
        prepare_recipe("vae", "digits", limit=50, labeled=10)


def test_cli_labeled_flag(capsys):
    assert main(["fit", "vae", "--limit", "50", "--labeled", "10", "--quiet"]) == 2
    assert "the vae recipe does not take labels" in capsys.readouterr().err
    assert main(["fit", "vae", "--labeled", "1.5"]) == 2
    assert "expected a count >= 0 or a fraction" in capsys.readouterr().err


def test_batch_call_convention():
    x = torch.zeros(2, 3)
    assert Batch(x).call() == ((x,), {})
    args, kwargs = Batch(x, torch.tensor([1, 0]), torch.tensor([True, False])).call()
    assert args[0] is x and args[1].tolist() == [1, 0]
    assert kwargs["y_mask"].tolist() == [True, False]
