"""A user's first mistakes get a way on: no abbreviated flags, close matches, help for every flag,
a plugin in the working folder found, an existing run never overwritten by accident."""

import argparse
import sys
from pathlib import Path

import pytest

from pyromix.cli import build_parser, main
from pyromix.runs import train_recipe

PLUGIN = (Path(__file__).parent / "student_recipe.py").read_text()


pytestmark = pytest.mark.usefixtures("shipped_recipes_only")  # registered ones are gone after


def actions(parser, command="pyromix"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from actions(sub, name)
        elif action.dest != "help":
            yield command, action


def test_every_flag_and_argument_has_help_text():
    missing = [(cmd, a.option_strings or a.dest) for cmd, a in actions(build_parser()) if not a.help]
    assert not missing, f"no help text: {missing}"


def test_an_abbreviated_flag_is_refused_with_the_flag_it_is_close_to(capsys):
    assert main(["fit", "vae", "--epoch", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unrecognized arguments: --epoch 1; did you mean --epochs?" in err
    assert not Path("runs").exists()  # refused before any work


def test_a_misspelt_recipe_gets_the_close_match(capsys):
    assert main(["fit", "vea", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown recipe 'vea'; did you mean 'vae'?" in err


def test_plugin_module_in_the_working_folder_is_found(tmp_path, capsys):
    # The `pyromix` command's sys.path starts at its script's folder, not the working one.
    assert str(tmp_path) not in sys.path
    (tmp_path / "my_plugin_here.py").write_text(
        PLUGIN + "\nfrom pyromix import register_recipe\nregister_recipe('student-here', student)\n"
    )
    assert main(["list", "--plugin", "my_plugin_here"]) == 0
    assert "student-here" in capsys.readouterr().out
    assert str(tmp_path) not in sys.path  # only while importing


def test_train_recipe_refuses_an_existing_run_unless_forced(tmp_path):
    small = dict(epochs=1, hidden=[8], limit=60, progress=False)
    train_recipe("vae", "digits", out=tmp_path / "run", **small)
    checkpoint = (tmp_path / "run" / "checkpoint.pt").read_bytes()
    refused = r"already holds a run; pass --resume or --force \(resume=True or force=True"
    with pytest.raises(ValueError, match=refused):
        train_recipe("vae", "digits", out=tmp_path / "run", **small)
    assert (tmp_path / "run" / "checkpoint.pt").read_bytes() == checkpoint  # nothing lost
    train_recipe("vae", "digits", out=tmp_path / "run", force=True, **{**small, "seed": 1})
    assert (tmp_path / "run" / "checkpoint.pt").read_bytes() != checkpoint


def test_pretraining_names_what_a_users_mixture_pair_lacks_before_any_work():
    import torch
    from pyro.nn import PyroModule
    from torch import nn

    from pyromix.pretrain import check_pretrainable
    from pyromix.recipes import pretrain_mixture
    from pyromix.runs import prepare_recipe

    shipped = prepare_recipe("gmvae", "digits", limit=50, hidden=[8], learn_weights=True)
    check_pretrainable(shipped.model, shipped.guide)  # the shipped pair has every piece

    class MyMixture(PyroModule):
        def __init__(self):
            super().__init__()
            self.loc = nn.Parameter(torch.zeros(3, 2))  # a plain Parameter cannot take the GMM's
            self.raw_scale = nn.Parameter(torch.zeros(3, 2))
            self.likelihood = shipped.model.likelihood
            self.num_clusters, self.learn_weights = 3, False

    before = [p.detach().clone() for p in shipped.model.likelihood.parameters()]
    args = {**shipped.args, "pretrain_epochs": 2}
    with pytest.raises(ValueError) as refused:
        pretrain_mixture(MyMixture(), shipped.guide, shipped.dataset, args)
    message = str(refused.value)
    assert "\n" not in message and "MyMixture / " in message
    assert "model.prior_std_min" in message and "model.loc as a PyroParam" in message
    assert "model.num_clusters" not in message and "guide." not in message
    after = list(shipped.model.likelihood.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, after))  # no pretraining step ran


def test_reloading_a_run_whose_recipe_changed_names_the_parameters_that_differ(tmp_path, capsys):
    from pyromix.recipes import unregister_recipe

    plugin = tmp_path / "my_recipes.py"
    plugin.write_text(PLUGIN)
    out = tmp_path / "student"
    assert main(["fit", f"{plugin}:student", "--out", str(out), "--epochs", "1", "--samples",
                 "10", "--hidden", "8", "--limit", "60", "--quiet"]) == 0
    # The user edits the recipe: a learned prior scale and a wider latent.
    plugin.write_text(PLUGIN.replace(
        "        self.likelihood, self.d = likelihood, d\n",
        "        self.likelihood, self.d = likelihood, d\n"
        "        self.prior_scale = torch.nn.Parameter(torch.ones(d))\n",
    ).replace('d = args["latent_dim"]', 'd = args["latent_dim"] + 1'))
    unregister_recipe("student")  # as a new process: the run imports the file again
    capsys.readouterr()
    assert main(["evaluate", str(out), "--samples", "10"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "was saved by another version of recipe 'student''s model (" in err
    assert "built but not saved: prior_scale" in err
    assert "of another shape: likelihood.decoder." in err and "restore the recipe" in err


def test_fit_trains_and_evaluates_plain_functions_with_pyro_param(tmp_path):
    """z_n ~ N(0, 1) and x_n ~ N(mu, I) (z carries no information): the ELBO's optimum is
    mu = the training mean and q(z_n) = N(0, 1), where log p(x) is exact in closed form."""
    import pyro
    import pyro.distributions as dist
    import torch
    from pyro.infer import Trace_ELBO
    from torch.distributions import constraints

    from pyromix.data import load_dataset
    from pyromix.evaluate import log_likelihood
    from pyromix.train import fit

    def model(x):
        mu = pyro.param("mu", torch.zeros(x.shape[1]))
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(0.0, 1.0))
            pyro.sample("x", dist.Normal(mu, 1.0).to_event(1), obs=x)

    def guide(x):
        m = pyro.param("m", torch.tensor(1.0))
        s = pyro.param("s", torch.tensor(0.5), constraint=constraints.positive)
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(m, s))

    data = load_dataset("digits", limit=300)
    history = fit(model, guide, data, Trace_ELBO(), epochs=60, lr=0.05, progress=False,
                  checkpoint=tmp_path / "c.pt")
    assert history.train_loss[-1] < history.train_loss[0]
    mean = data.train.x.mean(0)
    assert torch.allclose(pyro.param("mu").detach(), mean, atol=0.05)
    m, s = float(pyro.param("m").detach()), float(pyro.param("s").detach())
    assert abs(m) < 0.1 and abs(s - 1) < 0.1
    x = data.test.x
    exact = dist.Normal(pyro.param("mu").detach(), 1.0).to_event(1).log_prob(x)
    estimate = log_likelihood(model, guide, x, num_samples=200).log_px
    assert torch.allclose(estimate, exact, atol=0.05) and abs(float((estimate - exact).mean())) < 0.01
