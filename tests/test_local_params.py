"""Parameters stay in their modules without pyromix switching Pyro's global setting."""

import subprocess
import sys

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.nn import PyroModule, PyroParam
from torch import nn

from pyromix.data import Dataset, Split
from pyromix.recipes import get_recipe
from pyromix.runs import prepare_recipe
from pyromix.train import evaluate_loss, fit

_IMPORT_ALL = (
    "import pyro; before = pyro.settings.get('module_local_params'); "
    "import pyromix, pyromix.cli, pyromix.train, pyromix.estimators, pyromix.models, "
    "pyromix.guides, pyromix.recipes, pyromix.infer; "
    "print(before, pyro.settings.get('module_local_params'))"
)


@pytest.mark.parametrize("setting", [None, True])
def test_import_pyromix_changes_no_pyro_setting(setting):
    # In a fresh interpreter: this one has imported pyromix already.
    code = _IMPORT_ALL
    if setting is not None:
        code = f"import pyro; pyro.settings.set(module_local_params={setting}); " + code
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [str(bool(setting))] * 2


class _Located(PyroModule):
    """A user's module, with a learned location named as in its partner."""

    def __init__(self, loc):
        super().__init__()
        self.loc = PyroParam(torch.full((2,), loc))
        self.net = nn.Linear(2, 2)

    def forward(self, x):
        with pyro.plate("data", x.shape[0]):
            if isinstance(self, _UserGuide):
                pyro.sample("z", dist.Normal(self.net(x) + self.loc, 1.0).to_event(1))
            else:
                z = pyro.sample("z", dist.Normal(self.loc, 1.0).to_event(1))
                pyro.sample("x", dist.Normal(self.net(z), 1.0).to_event(1), obs=x)


class _UserGuide(_Located):
    pass


def test_a_users_modules_keep_their_own_parameters_in_fit_and_evaluation():
    # Model and guide both hold a PyroParam "loc": in Pyro's global store they would be one
    # (the guide's replaced by the model's), so the two must stay apart here.
    model, guide = _Located(0.0), _UserGuide(1.0)
    x = torch.randn(40, 2)
    data = Dataset("toy", Split(x[:30]), Split(x[30:35]), Split(x[35:]))
    fit(model, guide, data, Trace_ELBO(), epochs=2, batch_size=10, lr=0.05, progress=False)
    assert (guide.loc - model.loc).abs().min() > 0.3  # 1 apart at the start; one store: 0
    evaluate_loss(model, guide, Trace_ELBO(), data.val)
    assert not torch.allclose(model.loc, guide.loc)
    assert len(pyro.get_param_store()) == 0
    assert pyro.settings.get("module_local_params") is False
    # Outside pyromix's entry points the user's modules are Pyro's as before: global names.
    with pyro.poutine.trace(param_only=True) as params:
        Trace_ELBO().loss(model, guide, x)
    assert "loc" in params.trace.nodes and "loc" in pyro.get_param_store()


def test_a_pyromix_model_in_a_users_svi_loop_trains_its_own_parameters():
    # SVI with a pyro.optim optimiser equals a torch optimiser over the modules' parameters,
    # and nothing goes into the global param store.
    def trained(svi_loop):
        run = prepare_recipe("gmvae", "digits", hidden=[16], limit=60)
        objective = get_recipe("gmvae").objective(run.args)
        model, guide = run.model, run.guide
        parameters = list({id(p): p for p in [*model.parameters(), *guide.parameters()]}.values())
        initial = [p.detach().clone() for p in parameters]
        svi = SVI(model, guide, pyro.optim.Adam({"lr": 0.01}), objective)
        torch_adam = torch.optim.Adam(parameters, lr=0.01)
        batches = run.dataset.train_batches(10, torch.Generator().manual_seed(0))
        for i in range(4):
            x = next(batches)[0]
            pyro.set_rng_seed(i)
            if svi_loop:
                svi.step(x)
            else:
                torch_adam.zero_grad()
                objective.loss_and_grads(model, guide, x)
                torch_adam.step()
        return initial, [p.detach().clone() for p in parameters]

    _, by_torch = trained(False)
    initial, by_svi = trained(True)
    assert len(pyro.get_param_store()) == 0
    assert pyro.settings.get("module_local_params") is False
    assert all(not torch.equal(a, b) for a, b in zip(by_svi, initial))  # SVI trained them all
    for a, b in zip(by_svi, by_torch):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
