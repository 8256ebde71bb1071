"""Observation models (pyromix.likelihoods) against scipy, their choice from the data, their
footing in ``compare``, and every recipe with every likelihood that applies to it."""

import math

import numpy as np
import pyro
import pytest
import torch
from pyro import poutine
from scipy import stats

from pyromix.capture import StepCapture
from pyromix.cli import main
from pyromix.footing import footing
from pyromix.likelihoods import (
    LEVEL_LIKELIHOODS,
    LIKELIHOODS,
    DiscretizedLogisticLikelihood,
    DiscretizedLogisticMixture,
    GaussianLikelihood,
    HeteroscedasticGaussianLikelihood,
)
from pyromix.nn import mlp
from pyromix.recipes import RECIPES, get_recipe
from pyromix.runs import prepare_recipe

D = 6


def _decoder(per_dim, in_dim=3):
    return mlp(in_dim, [8], per_dim * D).double()


def _logistic_pmf(k, levels, weights, loc, scale):
    """P(level k) of a mixture of discretised logistics, from scipy's logistic CDF (right of
    the location from its survival function, so that no difference of two numbers near 1)."""
    h = 0.5 / (levels - 1)
    x = k / (levels - 1)
    cdf = np.where(k == levels - 1, 1.0, stats.logistic.cdf(x + h, loc, scale)) - np.where(
        k == 0, 0.0, stats.logistic.cdf(x - h, loc, scale)
    )
    sf = np.where(k == 0, 1.0, stats.logistic.sf(x - h, loc, scale)) - np.where(
        k == levels - 1, 0.0, stats.logistic.sf(x + h, loc, scale)
    )
    return (weights * np.where(x > loc, sf, cdf)).sum(-1)


@pytest.mark.parametrize("bounds", [None, (-0.1, 0.1)])
def test_heteroscedastic_gaussian_log_density_matches_scipy(bounds):
    likelihood = HeteroscedasticGaussianLikelihood(_decoder(2), True, bounds)
    z, x = torch.randn(5, 3, dtype=torch.float64), torch.rand(5, D, dtype=torch.float64)
    with torch.no_grad():
        out = likelihood.decoder(z).numpy()
        log_prob = likelihood(z).log_prob(x).numpy()
    mean, log_var = 1 / (1 + np.exp(-out[:, :D])), out[:, D:]
    if bounds is not None:
        assert (log_var < bounds[0]).any() and (log_var > bounds[1]).any()  # both clamps tested
        log_var = np.clip(log_var, *bounds)
    expected = stats.norm.logpdf(x.numpy(), mean, np.exp(0.5 * log_var) + 1e-3).sum(-1)
    np.testing.assert_allclose(log_prob, expected, rtol=1e-10)


def test_homoscedastic_gaussian_starts_at_the_data_spread_and_matches_scipy():
    likelihood = GaussianLikelihood(_decoder(1), D, std_min=1e-3).double()
    x = torch.rand(50, D, dtype=torch.float64) * torch.arange(1, D + 1)
    x[:, 0] = 0.25  # a constant dimension starts at the floor, not at zero
    likelihood.init_from_data_(x)
    spread = x.numpy().std(0, ddof=1)
    floor = 0.1 * spread.mean()
    np.testing.assert_allclose(likelihood.scale().detach().numpy()[1:], spread[1:], rtol=1e-6)
    assert likelihood.scale()[0].item() == pytest.approx(floor, rel=1e-6)
    z = torch.randn(4, 3, dtype=torch.float64)
    with torch.no_grad():
        mean, log_prob = likelihood.decoder(z).numpy(), likelihood(z).log_prob(x[:4]).numpy()
    scale = likelihood.scale().detach().numpy()
    expected = stats.norm.logpdf(x[:4].numpy(), mean, scale).sum(-1)
    np.testing.assert_allclose(log_prob, expected, rtol=1e-10)


def test_a_recipe_starts_its_per_dimension_std_at_the_training_split_spread():
    run = prepare_recipe("vae", "digits", likelihood="gaussian", binarize="none", limit=80)
    spread = run.dataset.train.x.std(0)
    floor = 0.1 * float(spread.mean())
    expected = spread.clamp(min=floor)
    assert torch.allclose(run.model.likelihood.scale(), expected, rtol=1e-5)


def test_an_old_checkpoint_with_a_softplus_std_loads_to_the_same_std():
    likelihood = GaussianLikelihood(_decoder(1), D, std_min=0.01)
    raw = torch.randn(D)
    state = {k: v for k, v in likelihood.state_dict().items() if k != "log_scale"}
    likelihood.load_state_dict({**state, "raw_scale": raw})
    assert torch.allclose(likelihood.scale(), torch.nn.functional.softplus(raw) + 0.01)


@pytest.mark.parametrize("levels, components", [(2, 1), (17, 1), (17, 3), (256, 2)])
def test_discretised_logistic_probabilities_match_scipy_and_sum_to_one(levels, components):
    generator = torch.Generator().manual_seed(levels + components)
    shape = (4, D, components)
    logits = torch.randn(shape, generator=generator, dtype=torch.float64)
    loc = torch.rand(shape, generator=generator, dtype=torch.float64) * 1.4 - 0.2
    log_scale = torch.randn(shape, generator=generator, dtype=torch.float64) - 2.5
    d = DiscretizedLogisticMixture(logits, loc, log_scale, levels)
    k = torch.randint(0, levels, (4, D), generator=generator)
    k[0, 0], k[0, 1] = 0, levels - 1  # both edge bins
    weights = torch.softmax(logits, -1).numpy()
    args = (weights, loc.numpy(), log_scale.exp().numpy())
    expected = _logistic_pmf(k.numpy()[..., None], levels, *args)
    log_prob = d.log_prob(k.double() / (levels - 1)).numpy()
    np.testing.assert_allclose(np.exp(log_prob), expected, rtol=1e-9, atol=1e-300)
    grid = torch.arange(levels, dtype=torch.float64) / (levels - 1)
    every = d.expand((levels, 4, D)).log_prob(grid[:, None, None].expand(levels, 4, D))
    np.testing.assert_allclose(every.exp().sum(0).numpy(), 1.0, rtol=1e-9)
    expected_mean = (every.exp() * grid[:, None, None]).sum(0)
    assert torch.allclose(d.mean, expected_mean, rtol=1e-9)


def test_discretised_logistic_stays_exact_far_in_the_tails_and_at_tiny_scales():
    loc = torch.tensor([[0.5], [0.5], [0.0]], dtype=torch.float64)
    log_scale = torch.tensor([[-7.0], [-7.0], [-5.0]], dtype=torch.float64)
    d = DiscretizedLogisticMixture(torch.zeros_like(loc), loc, log_scale, 256)
    x = torch.tensor([1.0, 128 / 255, 200 / 255], dtype=torch.float64)
    log_prob = d.log_prob(x)
    # logsigmoid identities: the top bin is 1 - sigmoid(b), the middle bin nearly the whole mass,
    # the far bin sigmoid(a) - sigmoid(b) with both in the left tail
    s = math.exp(-7.0)
    b = (1 - 0.5 / 255 - 0.5) / s
    assert log_prob[0].item() == pytest.approx(-b - math.log1p(math.exp(-b)), rel=1e-9)
    mass = stats.logistic.cdf(128.5 / 255, 0.5, s) - stats.logistic.cdf(127.5 / 255, 0.5, s)
    assert log_prob[1].item() == pytest.approx(math.log(mass), rel=1e-9)
    s = math.exp(-5.0)
    a, b = (200.5 / 255) / s, (199.5 / 255) / s
    far = -b + math.log(1 - math.exp(-(a - b)))  # log(sigmoid(-b) - sigmoid(-a)) for large a, b
    assert log_prob[2].item() == pytest.approx(far, rel=1e-6) and math.isfinite(far)


def test_discretised_logistic_draws_sit_on_the_levels_with_its_probabilities():
    d = DiscretizedLogisticMixture(
        torch.tensor([0.0, 1.0]), torch.tensor([0.2, 0.7]), torch.tensor([-2.0, -3.0]), 5
    )
    draws = d.sample((40_000,))
    assert torch.equal(draws * 4, (draws * 4).round())
    frequencies = torch.bincount((draws * 4).round().long(), minlength=5).double() / 40_000
    probs = d.log_prob(torch.arange(5.0) / 4).exp().double()
    assert torch.allclose(frequencies, probs, atol=0.01)


def test_gradient_reaches_the_log_variance_head():
    run = prepare_recipe(
        "vae", "digits", likelihood="heteroscedastic", binarize="none", hidden=[8], limit=30
    )
    x = run.dataset.train.x[:10]
    get_recipe("vae").objective(run.args).loss_and_grads(run.model, run.guide, x)
    head = run.model.likelihood.decoder[-1]
    d = run.args["data_dim"]
    assert head.out_features == 2 * d
    assert (head.weight.grad[d:].abs().sum(-1) > 0).all()  # every log-variance output
    assert (head.bias.grad[d:] != 0).all()


def test_automatic_choice_says_which_and_level_likelihoods_need_levels():
    run = prepare_recipe("vae", "digits", binarize="none", limit=40)
    assert (run.args["likelihood"], run.args["levels"]) == ("logistic", 17)
    assert "17 levels" in run.args["likelihood_auto"]
    run = prepare_recipe("vae", "mixture1d", limit=40)
    assert run.args["likelihood"] == "gaussian" and "continuous" in run.args["likelihood_auto"]
    run = prepare_recipe("vae", "digits", likelihood="logistic", binarize="dynamic", limit=40)
    assert run.args["levels"] == 2 and "likelihood_auto" not in run.args
    with pytest.raises(ValueError, match="likelihood: 'logistic_mixture' needs data on L"):
        prepare_recipe("vae", "mixture1d", likelihood="logistic_mixture", limit=40)
    with pytest.raises(ValueError, match="logvar_bounds: expected None or"):
        prepare_recipe("vae", "digits", likelihood="heteroscedastic", logvar_bounds=[0, -1])
    with pytest.raises(ValueError, match="logistic_components: expected an integer >= 1"):
        prepare_recipe("vae", "digits", likelihood="logistic_mixture", logistic_components=0)


def test_footing_of_each_observation_model():
    assert footing({"likelihood": "logistic", "levels": 17}) == footing(
        {"likelihood": "flow", "levels": 17}
    )
    assert footing({"likelihood": "logistic_mixture", "levels": 256}) == (
        "probability of 256-level data"
    )
    assert footing({"likelihood": "heteroscedastic"}) == footing({"likelihood": "gaussian"})
    logistic = footing({"likelihood": "logistic", "levels": 17})
    assert footing({"likelihood": "heteroscedastic"}) != logistic


def test_compare_refuses_a_discretised_logistic_run_against_a_gaussian_density_run(
    tmp_path, capsys
):
    tiny = ["--epochs", "1", "--hidden", "8", "--samples", "5", "--quiet", "--limit", "30"]
    for likelihood in ("logistic", "heteroscedastic"):
        out = tmp_path / likelihood
        args = ["fit", "vae", "--binarize", "none", "--likelihood", likelihood, "--out", str(out)]
        assert main([*args, *tiny]) == 0
    capsys.readouterr()
    paths = [str(tmp_path / "logistic"), str(tmp_path / "heteroscedastic")]
    assert main(["compare", *paths, "--samples", "5"]) == 2
    error = capsys.readouterr().err
    assert "probability of 17-level data" in error and "a density" in error
    assert all(path in error for path in paths) and error.count("\n") == 1


# Every recipe that builds its decoder from the recipe arguments, with every likelihood that
# applies to it (Bernoulli is tests/test_models.py's contract on binarised digits; the flow and
# the GAN have their own).
DECODING = [n for n, r in RECIPES.items() if r.defaults.get("likelihood") not in ("flow", "none")]
CONTINUOUS = [name for name in LIKELIHOODS if name != "bernoulli"]


@pytest.mark.parametrize("likelihood", CONTINUOUS)
@pytest.mark.parametrize("name", DECODING)
def test_every_recipe_trains_with_every_likelihood(name, likelihood):
    fast = {"pretrain_epochs": 0} if "pretrain_epochs" in RECIPES[name].defaults else {}
    run = prepare_recipe(
        name,
        "digits",
        likelihood=likelihood,
        binarize="none",
        hidden=[8],
        limit=24,
        logistic_components=2,
        **fast,
    )
    model, guide = run.model, run.guide
    assert isinstance(model.likelihood, LIKELIHOODS[likelihood])
    x = run.dataset.train.x[:8]
    objective = get_recipe(name).objective(run.args)
    loss = objective.loss_and_grads(model, guide, x)
    assert math.isfinite(loss)
    for pname, p in model.likelihood.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, pname
    trace = poutine.trace(poutine.replay(model, poutine.trace(guide).get_trace(x))).get_trace(x)
    assert trace.nodes["x"]["is_observed"]
    samples = model.generate(4)
    assert samples.shape == (4, 64) and torch.isfinite(samples).all()
    if likelihood in LEVEL_LIKELIHOODS:
        assert run.args["levels"] == 17 and footing(run.args) == "probability of 17-level data"
    else:
        assert footing(run.args) == "density"


@pytest.mark.parametrize("likelihood", CONTINUOUS)
def test_captured_steps_equal_eager_steps_with_every_likelihood(likelihood):
    run = prepare_recipe(
        "vae", "digits", likelihood=likelihood, binarize="none", hidden=[16], limit=40,
        logvar_bounds=[-3.0, 1.0] if likelihood == "heteroscedastic" else None,
    )
    objective = get_recipe("vae").objective(run.args)
    step = StepCapture(objective, run.model, run.guide, modules=(run.model, run.guide))
    step.after = 0
    optimizer = torch.optim.Adam(step.parameters, lr=1e-2)
    for i in range(3):
        x = run.dataset.train.x[10 * i : 10 * i + 10]
        for p in step.parameters:
            p.grad = None
        pyro.set_rng_seed(i)
        with pyro.validation_enabled(False):
            eager = objective.loss_and_grads(run.model, run.guide, x)
        eager_grads = [p.grad.clone() for p in step.parameters]
        for p in step.parameters:
            p.grad = None
        pyro.set_rng_seed(i)
        loss = step(x)
        assert loss == pytest.approx(eager, rel=1e-6)
        for g, e in zip((p.grad for p in step.parameters), eager_grads):
            assert torch.allclose(g, e, rtol=1e-5, atol=1e-7 * e.abs().max().item())
        optimizer.step()
    assert step.off == "" and step.graphs == 1, step.off


def test_likelihood_of_a_discretised_logistic_decoder_has_its_outputs():
    likelihood = DiscretizedLogisticLikelihood(_decoder(9), 17, components=3).double()
    d = likelihood.distribution(torch.randn(2, 3, dtype=torch.float64))
    assert d.batch_shape == (2, D) and d.loc.shape == (2, D, 3)
    assert likelihood.outputs_per_dim(1) == 2 and likelihood.outputs_per_dim(3) == 9
