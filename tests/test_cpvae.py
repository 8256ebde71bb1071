"""CP-VAE (seed 001): closed-form KLs, both estimators against direct computations, generation."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import TraceEnum_ELBO, TraceMeanField_ELBO
from pyromix.guides import GatedGuide
from pyromix.models import ConditionalPriorVAE
from torch.distributions import kl_divergence

from pyromix.distributions import CategoryConditionalNormal, GatedNormal, GumbelSoftmax
from pyromix.infer import TemperatureAnnealing
from pyromix.likelihoods import BernoulliLikelihood
from pyromix.nn import mlp
from pyromix.runs import aggregated_posterior, generate, train_recipe

K, D, DATA = 3, 2, 6


def make_pair(estimator="gumbel"):
    model = ConditionalPriorVAE(BernoulliLikelihood(mlp(D + K, [8], DATA)), D, K)
    guide = GatedGuide(mlp(DATA, [8]), D, K, estimator=estimator, temperature=0.7)
    with torch.no_grad():
        model.loc.normal_()
    return model, guide


def test_relaxed_category_kl_is_eq9():
    logits = torch.randn(5, K)
    q, p = GumbelSoftmax(0.5, logits), dist.OneHotCategorical(logits=torch.zeros(K))
    probs = logits.softmax(-1)
    entropy = -(probs * probs.log()).sum(-1)
    assert torch.allclose(kl_divergence(q, p), math.log(K) - entropy, atol=1e-6)
    value = q.rsample()
    assert torch.allclose(value.sum(-1), torch.ones(5)) and ((value > 0) & (value < 1)).all()


def test_confident_relaxed_draws_keep_a_finite_log_density():
    # logits 200 apart at tau = 0.5: the unclamped draw underflows to exactly [0, 1] and its
    # log density is NaN, which Pyro warns about at every step.
    for k in (2, 150):
        logits = torch.zeros(100, k)
        logits[:, 0] = 200.0
        q = GumbelSoftmax(0.5, logits)
        value = q.rsample((3,))
        assert value.shape == (3, 100, k) and (value > 0).all()
        assert (value.sum(-1) - 1).abs().max() < 1e-6  # still in the simplex q validates
        assert torch.isfinite(q.log_prob(value)).all()


def test_gated_kl_is_the_posterior_weighted_average_of_eq8():
    loc, scale = torch.randn(K, D), torch.rand(K, D) + 0.2
    q_loc, q_scale, probs = torch.randn(4, D), torch.rand(4, D) + 0.1, torch.rand(4, K).softmax(-1)
    relaxed = torch.rand(4, K).softmax(-1)  # the value of c in p must not matter
    kl = kl_divergence(
        GatedNormal(q_loc, q_scale, probs), CategoryConditionalNormal(loc, scale, relaxed)
    )
    for i in range(4):
        direct = sum(
            probs[i, k]
            * kl_divergence(
                dist.Normal(q_loc[i], q_scale[i]).to_event(1),
                dist.Normal(loc[k], scale[k]).to_event(1),
            )
            for k in range(K)
        )
        assert kl[i] == pytest.approx(float(direct), rel=1e-5)


def test_conditional_normal_is_the_selected_gaussian_for_one_hot_c():
    loc, scale = torch.randn(K, D), torch.rand(K, D) + 0.2
    c = torch.nn.functional.one_hot(torch.tensor([2, 0, 1]), K).float()
    p, z = CategoryConditionalNormal(loc, scale, c), torch.randn(3, D)
    index = c.argmax(-1)
    expected = dist.Normal(loc[index], scale[index]).to_event(1).log_prob(z)
    assert torch.allclose(p.log_prob(z), expected)
    draws = CategoryConditionalNormal(loc, scale, c[:1].expand(4000, K)).sample()
    assert torch.allclose(draws.mean(0), loc[2], atol=0.1)
    with pytest.raises(ValueError, match="category"):
        CategoryConditionalNormal(loc, scale, torch.ones(3, K + 1))


def trace_pair(model, guide, x, seed=0):
    pyro.set_rng_seed(seed)
    guide_trace = poutine.trace(guide).get_trace(x)
    model_trace = poutine.trace(poutine.replay(model, guide_trace)).get_trace(x)
    return guide_trace, model_trace


def test_gumbel_objective_is_relaxed_reconstruction_plus_closed_form_kls():
    model, guide = make_pair("gumbel")
    x = torch.bernoulli(torch.rand(5, DATA))
    pyro.set_rng_seed(0)
    loss = TraceMeanField_ELBO().loss(model, guide, x)
    guide_trace, model_trace = trace_pair(model, guide, x)
    c, z = guide_trace.nodes["y"]["value"], guide_trace.nodes["z"]["value"]
    assert not torch.equal(c, c.round())  # a relaxed sample reaches the decoder
    probs = guide.cluster_probs(x)
    q_z = guide_trace.nodes["z"]["fn"]
    b1 = (probs * (probs.log() + math.log(K))).sum(-1)
    b2 = (
        probs
        * torch.stack(
            [
                kl_divergence(
                    dist.Normal(q_z.loc, q_z.scale).to_event(1),
                    dist.Normal(model.loc[k], model.scale[k]).to_event(1),
                )
                for k in range(K)
            ],
            -1,
        )
    ).sum(-1)
    reconstruction = model.likelihood(torch.cat([z, c], -1)).log_prob(x)
    expected = -(reconstruction - b1 - b2).sum().item()
    assert loss == pytest.approx(expected, rel=1e-5)


def test_enum_objective_sums_eq7_over_the_categories():
    model, guide = make_pair("enum")
    x = torch.bernoulli(torch.rand(5, DATA))
    pyro.set_rng_seed(0)
    loss = TraceEnum_ELBO(max_plate_nesting=1).loss(model, guide, x)
    pyro.set_rng_seed(0)
    enumerated = poutine.enum(guide, first_available_dim=-2)  # c drawn by no random numbers
    z = poutine.trace(enumerated).get_trace(x).nodes["z"]["value"]  # z does not depend on c
    probs = guide.cluster_probs(x)
    q_z = guide._posteriors(x)[1]
    elbo = -q_z.log_prob(z)
    for k in range(K):
        c = torch.eye(K)[k].expand(5, K)
        joint = (
            model.likelihood(torch.cat([z, c], -1)).log_prob(x)
            + model.component(c).log_prob(z)
            - math.log(K)
            - probs[:, k].log()
        )
        elbo = elbo + probs[:, k] * joint
    assert loss == pytest.approx(-elbo.sum().item(), rel=1e-5)


def test_eval_mode_draws_exact_one_hot_categories():
    model, guide = make_pair("gumbel")
    x = torch.rand(50, DATA)
    guide.eval()
    c = poutine.trace(guide).get_trace(x).nodes["y"]["value"]
    assert torch.equal(c, c.round()) and torch.equal(c.sum(-1), torch.ones(50))


def test_guide_rejects_unknown_estimator_and_bad_temperature():
    with pytest.raises(ValueError, match="estimator.*gumbel"):
        GatedGuide(mlp(DATA, [8]), D, K, estimator="reinforce")
    with pytest.raises(ValueError, match="temperature"):
        GatedGuide(mlp(DATA, [8]), D, K, temperature=0.0)


def test_temperature_annealing_halves_by_mid_run_and_stays():
    model, guide = make_pair()
    schedule = TemperatureAnnealing(guide, epochs=20)
    assert schedule(0) == 1.0 and guide.temperature == 1.0
    assert schedule(5) == pytest.approx(math.exp(-math.log(2) / 2))
    assert schedule(10) == pytest.approx(0.5) and schedule(19) == 0.5
    with pytest.raises(ValueError, match="temperature"):
        TemperatureAnnealing(object(), 10)


def test_generate_from_weights_and_components():
    model, _ = make_pair()
    with torch.no_grad():
        model.loc.copy_(torch.tensor([[-50.0, 0.0], [0.0, 0.0], [50.0, 0.0]]))
    model.likelihood = BernoulliLikelihood(torch.nn.Linear(D + K, DATA))
    with torch.no_grad():
        model.likelihood.decoder.weight.zero_()
        model.likelihood.decoder.weight[:, 0] = 1.0  # the mean reads z_1: far left or right
        model.likelihood.decoder.bias.zero_()
    left = model.generate(200, weights=torch.tensor([1.0, 0.0, 0.0]))
    right = model.generate(200, component=2)
    assert (left < 0.01).all() and (right > 0.99).all()
    for bad in (torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0, 1.0]), torch.zeros(K)):
        with pytest.raises(ValueError, match="weights"):
            model.generate(2, weights=bad)


def test_cpvae_recovers_both_modes_of_the_1d_mixture():
    """Seed 001, 5.1: with K=2 each true mode holds 40-60 % of the generated mass (3 std).

    Without the warm start, as in the paper (which pretrains nothing)."""
    run = train_recipe(
        "cpvae",
        "mixture1d",
        warm_start=False,
        clusters=2,
        epochs=30,
        limit=5000,
        latent_dim=2,
        hidden=[64, 64],
        lr=3e-3,
        progress=False,
    )
    q_c = aggregated_posterior(run)
    assert q_c.shape == (2,) and q_c.sum() == pytest.approx(1.0)
    pyro.set_rng_seed(0)
    x = run.model.generate(4000, mean=False, weights=q_c).squeeze(-1)
    for centre in (0.3, 0.7):
        share = float(((x - centre).abs() < 3 * 0.05).float().mean())
        assert 0.4 <= share <= 0.6, (centre, share)
    means, _ = generate(run, 10, categories="prior")
    assert means.shape == (10, 1)
