"""Learned priors against direct computations: the MG prior and the VampPrior."""

import math

import pytest
import torch

from pyromix.guides import GaussianGuide
from pyromix.models import MixtureOfGaussiansPrior, VampPrior
from pyromix.nn import NormalHead, mlp
from pyromix.recipes import get_recipe
from pyromix.runs import load_run, prepare_recipe, train_recipe


def test_mixture_of_gaussians_prior_is_the_uniform_mixture():
    prior = MixtureOfGaussiansPrior(3, 4)
    with torch.no_grad():
        prior.raw_scale.normal_()
    z = torch.randn(7, 3)
    components = prior.components()
    direct = torch.logsumexp(
        torch.stack([components.log_prob(z[:, None])[:, k] for k in range(4)], -1), -1
    ) - math.log(4)
    assert torch.allclose(prior().log_prob(z), direct, atol=1e-5)
    prior().log_prob(z).sum().backward()
    assert prior.loc.grad.abs().sum() > 0 and prior.raw_scale.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="num_components"):
        MixtureOfGaussiansPrior(3, 0)


def test_mixture_prior_means_start_overlapping_so_no_point_sits_in_one_component():
    # Paper settings: K = 10 components in 40 dimensions, codes near the origin as an untrained
    # encoder gives them. A code whose largest responsibility is r pays log K + log r in the
    # KL over what its best component alone would cost: about log K when r is near 1 (unit-scale
    # means), little when r is near 1/K (Glorot-small means).
    torch.manual_seed(0)
    prior = MixtureOfGaussiansPrior(40, 10)
    bound = math.sqrt(6 / (10 + 40))
    assert prior.loc.abs().max() <= bound and prior.loc.abs().max() > 0.9 * bound
    z = 0.1 * torch.randn(500, 40)
    responsibilities = prior.components().log_prob(z[:, None]).softmax(-1)
    assert responsibilities.max(-1).values.median() < 0.3
    with torch.no_grad():
        prior.loc.normal_()
    responsibilities = prior.components().log_prob(z[:, None]).softmax(-1)
    assert responsibilities.max(-1).values.median() > 0.6


def test_vampprior_is_the_mean_of_encoder_densities_at_clipped_pseudo_inputs():
    encoder = NormalHead(mlp(5, [8]), 2)
    init = torch.tensor([[-1.0, 0.5, 2.0, 0.2, 0.9]] * 2 + [[0.1] * 5])  # some outside [0, 1]
    prior = VampPrior(encoder, 3, 5, init=init)
    u = init.clamp(0, 1)
    assert torch.equal(prior.inputs(), u)
    z = torch.randn(6, 2)
    per_input = torch.stack([encoder(u[k]).log_prob(z) for k in range(3)], -1)
    direct = torch.logsumexp(per_input, -1) - math.log(3)
    assert torch.allclose(prior().log_prob(z), direct, atol=1e-5)
    prior().log_prob(z).sum().backward()
    assert prior.pseudo_inputs.grad[2].abs().sum() > 0  # inside the bounds: gradient flows
    assert any(p.grad is not None for p in encoder.parameters())
    with pytest.raises(ValueError, match=r"init: expected shape \(3, 5\)"):
        VampPrior(encoder, 3, 5, init=torch.zeros(2, 5))


def test_vampprior_recipe_shares_the_guides_encoder_and_can_start_from_data():
    run = prepare_recipe("vampprior", "digits", components=7, pseudo_init="data", limit=40)
    assert isinstance(run.guide, GaussianGuide) and run.model.prior.encoder is run.guide.encoder
    get_recipe("vampprior").initialize(run.model, run.guide, run.dataset, run.args)
    train = run.dataset.train.x
    for u in run.model.prior.pseudo_inputs:
        assert (train == u).all(-1).any()  # every pseudo-input is a training point
    assert run.model.generate(4).shape == (4, 64)
    with pytest.raises(ValueError, match="pseudo_init"):
        prepare_recipe("vampprior", "digits", pseudo_init="zeros", limit=40)


def test_vampprior_clips_each_feature_into_its_own_bounds():
    encoder = NormalHead(mlp(2, [8]), 2)
    lower, upper = torch.tensor([0.0, -5.0]), torch.tensor([1.0, 5.0])
    prior = VampPrior(encoder, 400, 2, bounds=(lower, upper))
    start = prior.random_inputs()
    assert ((start >= lower) & (start <= upper)).all()
    assert start[:, 1].min() < -4 and start[:, 1].max() > 4  # uniform over each range
    with torch.no_grad():
        prior.pseudo_inputs[0] = torch.tensor([2.0, -9.0])
    assert torch.equal(prior.inputs()[0], torch.tensor([1.0, -5.0]))
    with pytest.raises(ValueError, match="lower <= upper"):
        prior.set_bounds(upper, lower)


def test_vampprior_recipe_keeps_pseudo_inputs_in_the_range_of_non_image_data(tmp_path):
    # mixture1d is Gaussian, not in [0, 1]: the bounds come from the training split and are
    # saved with the run. Without them, pseudo-inputs far from the data drove the encoder's
    # std there to 1e-10 and the prior's gradients to NaN (VampPrior, K = 150).
    run = train_recipe("vampprior", "mixture1d", components=20, limit=300, epochs=1, out=tmp_path)
    x = run.dataset.train.x
    prior = run.model.prior
    assert torch.equal(prior.lower, x.min(0).values) and torch.equal(prior.upper, x.max(0).values)
    assert ((prior.inputs() >= prior.lower) & (prior.inputs() <= prior.upper)).all()
    loaded = load_run(tmp_path).model.prior
    assert torch.equal(loaded.lower, prior.lower) and torch.equal(loaded.upper, prior.upper)


@pytest.mark.parametrize("name", ["mog", "vampprior"])
def test_generation_from_one_prior_component(name):
    run = prepare_recipe(name, "digits", components=4, limit=40)
    model = run.model
    base = model.prior.components().base_dist
    with torch.no_grad():  # make component 2 (nearly) a point: its samples decode to one image
        if name == "mog":
            model.prior.raw_scale[2] = -30.0
        else:
            (
                run.guide.encoder.raw_scale.weight.zero_(),
                run.guide.encoder.raw_scale.bias.fill_(-30.0),
            )
    base = model.prior.components().base_dist
    expected = model.likelihood.mean(base.loc[2]).expand(3, -1)
    assert torch.allclose(model.generate(3, component=2), expected, atol=1e-4)
    with pytest.raises(ValueError, match=r"component: expected 0 <= component < 4"):
        model.generate(1, component=4)
    with pytest.raises(ValueError, match="not a mixture"):
        prepare_recipe("vae", "digits", limit=40).model.generate(1, component=0)
