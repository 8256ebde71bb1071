"""fit for models it has never seen: optimiser factories, the data size, hook state, loss terms."""

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import Trace_ELBO
from pyro.nn import PyroModule, PyroParam

from pyromix.data import load_dataset
from pyromix.train import FitState, data_size, fit, parameter_groups

N_TRAIN = 70  # of 100 points, with the default 10 % validation and 20 % test


@pytest.fixture(scope="module")
def data():
    return load_dataset(np.random.default_rng(0).normal(size=(100, 2)))


class Gaussian(PyroModule):
    """x ~ N(loc + shift, 1): no latent site, so the loss is exact and deterministic.

    With ``subsample`` the data plate is Pyro's subsampling plate of size :func:`data_size`.
    """

    def __init__(self, subsample: bool = False) -> None:
        super().__init__()
        self.loc = PyroParam(torch.zeros(2))
        self.shift = torch.nn.Linear(1, 2)
        self.subsample, self.sizes = subsample, []

    def forward(self, x, y=None):
        size = data_size(x) if self.subsample else x.shape[0]
        self.sizes.append((x.shape[0], size))
        with pyro.plate("data", size, subsample=x if self.subsample else None):
            loc = self.loc + self.shift(torch.ones(1))
            pyro.sample("x", dist.Normal(loc, 1.0).to_event(1), obs=x)


class NoGuide(PyroModule):
    def forward(self, x, y=None):
        pass


def exact_loss(model, x):
    loc = (model.loc + model.shift(torch.ones(1))).detach()
    return float(-dist.Normal(loc, 1.0).to_event(1).log_prob(x).sum()) / len(x)


def frozen(params):
    return torch.optim.SGD(params, lr=0.0)


def test_parameter_groups_give_per_module_learning_rates(data):
    model = Gaussian()
    before = model.shift.weight.detach().clone(), model.loc.detach().clone()
    groups = lambda ps: torch.optim.SGD(parameter_groups(ps, {model.shift: {"lr": 0.0}}), lr=0.1)
    fit(model, NoGuide(), data, Trace_ELBO(), epochs=1, optimizer=groups, progress=False)
    assert torch.equal(model.shift.weight, before[0])  # lr 0 for this module
    assert not torch.equal(model.loc, before[1])
    with pytest.raises(ValueError, match=r"optimizer: the optimiser leaves 2 parameter\(s\) out"):
        only_loc = lambda ps: torch.optim.SGD([model.loc], lr=0.1)
        fit(model, NoGuide(), data, Trace_ELBO(), optimizer=only_loc, progress=False)
    with pytest.raises(ValueError, match="optimizer: expected a factory returning"):
        fit(model, NoGuide(), data, Trace_ELBO(), optimizer=lambda ps: ps, progress=False)


def test_data_size_scales_the_plate_and_losses_stay_per_point(data):
    plain, scaled = Gaussian(), Gaussian(subsample=True)
    scaled.load_state_dict(plain.state_dict())
    options = dict(epochs=1, batch_size=16, optimizer=frozen, progress=False)
    h_plain = fit(plain, NoGuide(), data, Trace_ELBO(), **options)
    h_scaled = fit(scaled, NoGuide(), data, Trace_ELBO(), **options)
    # Training batches see N = 70 (scale 70 / B), validation sees its own 10 points.
    assert {size for n, size in scaled.sizes} == {N_TRAIN, 10}
    assert {n for n, size in scaled.sizes if size == N_TRAIN} == {16, 6}
    exact_train, exact_val = exact_loss(plain, data.train.x), exact_loss(plain, data.val.x)
    for history in (h_plain, h_scaled):
        assert history.train_loss[0] == pytest.approx(exact_train, rel=1e-6)
        assert history.val_loss[0] == pytest.approx(exact_val, rel=1e-6)
    assert data_size(torch.zeros(3, 2)) == 3  # outside fit every point counts once


def test_subsample_scale_is_n_over_b_inside_fit(data):
    scales = []

    class Scaled(Gaussian):
        def forward(self, x, y=None):
            trace = pyro.poutine.trace(super().forward).get_trace(x)
            scales.append((x.shape[0], trace.nodes["x"]["scale"]))

    fit(Scaled(subsample=True), NoGuide(), data, Trace_ELBO(), epochs=1, batch_size=32,
        optimizer=frozen, progress=False)
    assert scales[:3] == [(32, N_TRAIN / 32), (32, N_TRAIN / 32), (6, N_TRAIN / 6)]


def test_hooks_receive_the_state_and_old_hooks_still_run(data):
    seen, calls = [], []
    model = Gaussian()

    class Hook:
        def __call__(self, state: FitState) -> None:
            seen.append((state.epoch, state.step, len(state.batch), state.num_data))
            assert state.model is model and state.batch.y is None
            batch_loss = exact_loss(model, state.batch.x) * len(state.batch)
            assert state.loss == pytest.approx(batch_loss, rel=1e-6)

        def state_dict(self):
            return {}

        def load_state_dict(self, state):
            pass

    class OldHook(Hook):
        def __call__(self) -> None:
            calls.append(1)

    hooks = [Hook(), OldHook()]
    options = dict(epochs=2, batch_size=32, optimizer=frozen, progress=False)
    fit(model, NoGuide(), data, Trace_ELBO(), step_hooks=hooks, **options)
    expected = [(e, s, n, N_TRAIN) for e in (0, 1) for s, n in enumerate((32, 32, 6))]
    assert seen == expected
    assert len(calls) == 6


class Loc(PyroModule):
    def __init__(self, start: torch.Tensor) -> None:
        super().__init__()
        self.loc = PyroParam(start.clone())

    def forward(self, x, y=None):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("x", dist.Normal(self.loc, 1.0).to_event(1), obs=x)


def test_loss_terms_add_to_loss_and_gradients(data):
    start, k, lr = torch.tensor([0.3, -0.2]), 0.5, 0.01
    model = Loc(start)
    penalty = lambda model, guide, batch: k * len(batch) * (model.loc**2).sum()
    sgd = lambda ps: torch.optim.SGD(ps, lr=lr)
    options = dict(epochs=1, batch_size=N_TRAIN, optimizer=sgd, progress=False)
    history = fit(model, NoGuide(), data, Trace_ELBO(), loss_terms=[penalty], **options)
    # One full-batch SGD step on -sum_i log N(x_i; loc, 1) + k N |loc|^2.
    x = data.train.x
    grad = -(x - start).sum(0) + 2 * k * N_TRAIN * start
    assert torch.allclose(model.loc, start - lr * grad, atol=1e-6)
    nll = -float(dist.Normal(start, 1.0).to_event(1).log_prob(x).sum())
    expected = (nll + k * N_TRAIN * float((start**2).sum())) / N_TRAIN
    assert history.train_loss[0] == pytest.approx(expected, rel=1e-6)
    # Validation adds the term too: it is part of the objective.
    val = -float(dist.Normal(model.loc.detach(), 1.0).to_event(1).log_prob(data.val.x).sum())
    val += k * len(data.val) * float((model.loc.detach() ** 2).sum())
    assert history.val_loss[0] == pytest.approx(val / len(data.val), rel=1e-5)
