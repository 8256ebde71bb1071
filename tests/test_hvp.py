"""HVAE + VP: the recipe's objectives equal the two-level ELBO written out by hand on the same
draws, and the importance-sampled log p(x) lies above the ELBO."""

import math

import pyro
import pytest
import torch
from pyro import poutine
from pyro.infer import Trace_ELBO
from torch.distributions import Bernoulli, Normal, kl_divergence

from pyromix.evaluate import log_likelihood
from pyromix.recipes import get_recipe
from pyromix.runs import prepare_recipe


@pytest.fixture(scope="module")
def hvp():
    pyro.set_rng_seed(0)
    run = prepare_recipe("hvp", "digits", hidden=[16, 16], latent_dim=3, components=4, limit=40)
    x, _ = next(run.dataset.train_batches(6, torch.Generator().manual_seed(0)))
    return run, x


def normal(linear_loc, linear_scale, h):
    return Normal(linear_loc(h), torch.nn.functional.softplus(linear_scale(h)))


def by_hand(run, x, z1, z2, *, analytic_z1_kl):
    """log p(x | z1, z2) + log p(z1 | z2) + log p(z2) - log q(z2 | x) - log q(z1 | x, z2), per
    point, from the networks' layers; with ``analytic_z1_kl`` the z1 terms are -KL(q || p)."""
    model, guide = run.model, run.guide
    enc2, enc1, prior1 = guide.z2_encoder, guide.z1_encoder, model.z1_given_z2
    q2 = normal(enc2.loc, enc2.raw_scale, enc2.body(x))
    q1 = normal(enc1.loc, enc1.raw_scale, enc1.body(torch.cat([x, z2], -1)))
    p1 = normal(prior1.loc, prior1.raw_scale, prior1.body(z2))
    u = run.model.prior.pseudo_inputs.clamp(0, 1)  # pseudo-inputs in [0, 1] for images
    components = normal(enc2.loc, enc2.raw_scale, enc2.body(u))  # q(z2 | u_k), (K, d)
    k = u.shape[0]
    log_p2 = torch.logsumexp(components.log_prob(z2[:, None, :]).sum(-1), -1) - math.log(k)
    logits = model.likelihood.decoder(torch.cat([z1, z2], -1))
    log_px = Bernoulli(logits=logits).log_prob(x).sum(-1)
    if analytic_z1_kl:
        z1_terms = -kl_divergence(q1, p1).sum(-1)
    else:
        z1_terms = p1.log_prob(z1).sum(-1) - q1.log_prob(z1).sum(-1)
    return log_px + log_p2 - q2.log_prob(z2).sum(-1) + z1_terms


@pytest.mark.parametrize("objective", ["trace", "recipe"])
def test_loss_is_the_two_level_elbo_written_by_hand(hvp, objective):
    run, x = hvp
    elbo = Trace_ELBO() if objective == "trace" else get_recipe("hvp").objective(run.args)
    pyro.set_rng_seed(3)
    loss = elbo.loss(run.model, run.guide, x)
    pyro.set_rng_seed(3)  # the objective's first act is to run the guide: the same draws
    trace = poutine.trace(run.guide).get_trace(x)
    z1, z2 = trace.nodes["z1"]["value"], trace.nodes["z2"]["value"]
    with torch.no_grad():
        expected = -by_hand(run, x, z1, z2, analytic_z1_kl=objective == "recipe").sum()
    assert loss == pytest.approx(float(expected), rel=1e-5)


def test_importance_sampled_log_likelihood_is_above_the_elbo(hvp):
    run, x = hvp
    result = log_likelihood(run.model, run.guide, x, 500)
    with torch.no_grad():
        elbo = -Trace_ELBO(num_particles=500, vectorize_particles=True, max_plate_nesting=1).loss(
            run.model, run.guide, x
        ) / len(x)
    assert torch.all(result.log_px >= result.elbo)
    # The ELBO's gap is E_q log(q / p(z | x)) > 0 and the IS estimate closes part of it: the
    # mean IS log p(x) is above an independent 500-draw ELBO estimate by far more than its error.
    assert float(result.log_px.mean()) > elbo + 0.5


def test_the_manifold_of_a_2d_z2_decodes_z1_at_its_conditional_mean(tmp_path):
    # hvp's decoder reads [z1, z2]: its manifold runs over z2 with z1 = E[z1 | z2].
    from pyromix.nn import joint_input
    from pyromix.runs import evaluate_run, train_recipe, write_report

    run = train_recipe(
        "hvp", "digits", latent_dim=2, hidden=[16], components=3, epochs=1, limit=100,
        progress=False,
    )
    z2 = torch.randn(5, 2)
    expected = run.model.likelihood.mean(joint_input(run.model.z1_given_z2(z2).mean, z2))
    torch.testing.assert_close(run.model.decode_manifold(z2), expected)
    written = write_report(run, evaluate_run(run, num_samples=5), tmp_path)
    assert tmp_path / "manifold.png" in written and (tmp_path / "manifold.png").stat().st_size
