"""Contract over every recipe, and the networks and likelihoods they are built from."""

import math
from pathlib import Path

import pyro
import pytest
import torch
from pyro import poutine
from pyro.poutine.util import site_is_subsample

from pyromix.likelihoods import BernoulliLikelihood, GaussianLikelihood
from pyromix.nn import ConvDecoder, ConvEncoder, GatedDense, NormalHead, mlp
from pyromix.recipes import RECIPES, get_recipe, load_recipe_file, unregister_recipe
from pyromix.runs import prepare_recipe


def latent_sites(trace):
    return {
        n
        for n, s in trace.nodes.items()
        if s["type"] == "sample" and not s["is_observed"] and not site_is_subsample(s)
    }


# Recipes whose latent sites are not z (and y for the mixtures).
LATENT_SITES = {"flow": {"u"}, "hvp": {"z1", "z2"}, "m2": {"y_unobserved", "z"}}


# A GAN observes nothing (it has no likelihood): tests/test_gan.py holds its contract.
WITH_LIKELIHOOD = [name for name, r in RECIPES.items() if r.defaults.get("likelihood") != "none"]
# The contract also holds for a recipe of one's own, loaded the way a plugin is (FILE.py:NAME).
PLUGIN = f"{Path(__file__).parent / 'student_recipe.py'}:student"


@pytest.fixture
def recipe_name(request):
    if request.param != PLUGIN:
        yield request.param
        return
    name = load_recipe_file(PLUGIN)
    yield name
    unregister_recipe(name)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize(
    "recipe_name",
    [*WITH_LIKELIHOOD, PLUGIN],
    indirect=True,
    ids=[*WITH_LIKELIHOOD, "plugin-file"],
)
def test_recipe_contract(recipe_name, arch):
    name = recipe_name
    run = prepare_recipe(name, "digits", arch=arch, hidden=[16, 16], limit=40)
    model, guide = run.model, run.guide
    x, _ = next(run.dataset.train_batches(8, torch.Generator().manual_seed(0)))  # binarised draw
    guide_trace = poutine.trace(guide).get_trace(x)
    model_trace = poutine.trace(poutine.replay(model, guide_trace)).get_trace(x)
    has_y = "clusters" in RECIPES[name].defaults and name != "vade"  # VaDE sums y out
    expected = LATENT_SITES.get(name, {"y", "z"} if has_y else {"z"})
    assert latent_sites(model_trace) == latent_sites(guide_trace) == expected
    assert model_trace.nodes["x"]["is_observed"]

    objective = get_recipe(name).objective(run.args)
    loss = objective.loss_and_grads(model, guide, x)
    assert math.isfinite(loss)
    # Parameters trained by the recipe's step hooks (the implicit prior's T) get no ELBO
    # gradient; every other parameter does.
    hooks = get_recipe(name).step_hooks(model, guide, run.dataset, run.args)
    by_hooks = {id(p) for hook in hooks for p in hook.parameters()}
    for module in (model, guide):
        for pname, p in module.named_parameters():
            if id(p) in by_hooks:
                assert p.grad is None, pname
            else:
                assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    if name != "flow":  # the flow's uniform dequantisation guide has no parameters
        assert any(p.grad.abs().sum() > 0 for p in guide.parameters())

    state = {k: v.clone() for k, v in {**model.state_dict(), **guide.state_dict()}.items()}
    rebuilt = prepare_recipe(name, "digits", arch=arch, hidden=[16, 16], limit=40, seed=99)
    rebuilt.model.load_state_dict(model.state_dict())
    rebuilt.guide.load_state_dict(guide.state_dict())
    pyro.set_rng_seed(4)
    expected = objective.loss(model, guide, x)
    pyro.set_rng_seed(4)
    assert objective.loss(rebuilt.model, rebuilt.guide, x) == pytest.approx(expected, rel=1e-6)
    assert all(
        torch.equal(state[k], v)
        for k, v in {**rebuilt.model.state_dict(), **rebuilt.guide.state_dict()}.items()
    )

    samples = model.generate(5)
    assert samples.shape == (5, 64) and torch.isfinite(samples).all()
    if run.args["likelihood"] == "bernoulli":
        assert samples.min() >= 0 and samples.max() <= 1


def test_gated_dense_is_linear_times_sigmoid_gate():
    layer = GatedDense(3, 2)
    x = torch.randn(4, 3)
    expected = layer.h(x) * torch.sigmoid(layer.g(x))
    assert torch.allclose(layer(x), expected)
    assert len(mlp(3, [5, 5], 2, gated=True)) == 3 and mlp(3, [5], None).out_features == 5


def test_networks_accept_leading_particle_dimensions():
    head = NormalHead(ConvEncoder((8, 8), 12), 4)
    x = torch.rand(3, 7, 64)
    q = head(x)
    assert q.batch_shape == (3, 7) and q.event_shape == (4,)
    assert ConvDecoder(4, (8, 8))(q.rsample()).shape == (3, 7, 64)
    assert ConvDecoder(4, (28, 28))(torch.randn(2, 4)).shape == (2, 784)
    with pytest.raises(ValueError, match="divisible by 4"):
        ConvEncoder((7, 7), 3)


def test_normal_head_and_gaussian_likelihood_respect_their_std_floor():
    head = NormalHead(mlp(2, [4]), 3, std_min=0.5)
    with torch.no_grad():
        head.raw_scale.bias.fill_(-50.0), head.raw_scale.weight.zero_()
    assert torch.allclose(head(torch.randn(6, 2)).base_dist.scale, torch.tensor(0.5))
    likelihood = GaussianLikelihood(mlp(2, [4], 3), 3, std_min=1.0)
    with torch.no_grad():
        likelihood.log_scale.fill_(-50.0)
    assert torch.allclose(likelihood(torch.randn(2, 2)).base_dist.scale, torch.tensor(1.0))
    likelihood.std_min = 1e-4  # what std annealing does between epochs
    assert likelihood(torch.randn(2, 2)).base_dist.scale.max() < 1e-3


def test_bernoulli_likelihood_refuses_values_outside_its_support():
    likelihood = BernoulliLikelihood(mlp(2, [4], 3))
    with pytest.raises(ValueError):
        likelihood(torch.randn(1, 2)).log_prob(torch.tensor([[0.5, 1.0, 0.0]]))


def test_recipe_arguments_are_validated_before_any_work():
    with pytest.raises(ValueError, match="unknown recipe 'nope'; choose from vae, ") as error:
        prepare_recipe("nope")
    assert all(name in str(error.value) for name in RECIPES)
    with pytest.raises(ValueError, match=r"unknown argument\(s\) \['latent'\]"):
        prepare_recipe("vae", latent=3)
    with pytest.raises(ValueError, match="hidden: expected a non-empty list"):
        prepare_recipe("vae", hidden=[])
    with pytest.raises(ValueError, match="no KL term"):
        prepare_recipe("iwae", warmup=10)
    with pytest.raises(ValueError, match="'conv' needs image data"):
        prepare_recipe("vae", "onehot", arch="conv")
    with pytest.raises(ValueError, match="needs data in"):
        prepare_recipe("vae", "digits", likelihood="bernoulli", binarize="none")


@pytest.mark.parametrize(
    "data, likelihood, binarize",
    [
        ("digits", "bernoulli", "dynamic"),
        ("onehot", "bernoulli", "none"),
        ("mixture1d", "gaussian", "none"),
    ],
)
def test_automatic_likelihood_and_binarisation(data, likelihood, binarize):
    run = prepare_recipe("vae", data, limit=50)
    assert (run.args["likelihood"], run.args["binarize"]) == (likelihood, binarize)
    assert run.args["latent_dim"] == (2 if data == "onehot" else 10)  # seed 004 uses 2-D on OneHot
