"""Enumerated guide sites are summed exactly in log p(x) and the ELBO; global latents give the
held-out predictive density. Every expected value is a closed form."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine

from pyromix.evaluate import SiteError, log_likelihood
from pyromix.importance import importance_weights

N, K = 6, 3
X = torch.linspace(-2.0, 2.0, N).unsqueeze(-1)
PI = torch.tensor([0.2, 0.3, 0.5])
MU = torch.tensor([-1.0, 0.0, 1.5])
Q_LOGITS = torch.tensor([1.0, -1.0, 0.5])  # a poor q(y | x): the same for every x
NOISE = 0.5  # x | z ~ N(z, NOISE^2)


def discrete_model(x, y=None, y_mask=None):
    """y ~ Cat(PI), x | y ~ N(MU_y, 1), the label observed where revealed."""
    with pyro.plate("data", x.shape[0]):
        y = pyro.sample("y", dist.Categorical(PI), obs=y, obs_mask=y_mask)
        pyro.sample("x", dist.Normal(MU[y].unsqueeze(-1), 1.0).to_event(1), obs=x)


def discrete_guide(x, y=None, y_mask=None):
    mask = True if y_mask is None else ~y_mask
    with pyro.plate("data", x.shape[0]), poutine.mask(mask=mask):
        q = dist.Categorical(logits=Q_LOGITS.expand(x.shape[0], K))
        name = "y" if y_mask is None else "y_unobserved"
        pyro.sample(name, q, infer={"enumerate": "parallel"})


def discrete_joint(x):
    """log p(x, y = k), shape (N, K)."""
    return PI.log() + dist.Normal(MU, 1.0).log_prob(x)


def test_discrete_latent_alone_is_exact_at_one_sample():
    ll = log_likelihood(discrete_model, discrete_guide, X, 1)
    assert torch.allclose(ll.log_px, torch.logsumexp(discrete_joint(X), -1), atol=1e-5)
    # the ELBO sums over y with q's probabilities: sum_y q(y) [log p(x, y) - log q(y)]
    log_q = torch.log_softmax(Q_LOGITS, -1)
    elbo = (log_q.exp() * (discrete_joint(X) - log_q)).sum(-1)
    assert torch.allclose(ll.elbo, elbo, atol=1e-5)
    assert ll.summed_sites == ("y",)


def test_revealed_labels_with_an_enumerated_guide_give_log_p_x_y_exactly():
    y = torch.tensor([2, 0, 1, 0, 0, 2])
    mask = torch.tensor([True, False, True, False, False, True])
    ll = log_likelihood(discrete_model, discrete_guide, X, 1, y=y, y_mask=mask)
    joint = discrete_joint(X)
    expected = torch.where(mask, joint.gather(-1, y[:, None])[:, 0], torch.logsumexp(joint, -1))
    assert torch.allclose(ll.log_px, expected, atol=1e-5)


def continuous_model(x):
    """y ~ Cat(PI), z | y ~ N(MU_y, 1), x | z ~ N(z, NOISE^2): p(x | y) = N(MU_y, 1 + NOISE^2)."""
    with pyro.plate("data", x.shape[0]):
        y = pyro.sample("y", dist.Categorical(PI))
        z = pyro.sample("z", dist.Normal(MU[y], 1.0))
        pyro.sample("x", dist.Normal(z.unsqueeze(-1), NOISE).to_event(1), obs=x)


def continuous_guide(x):
    with pyro.plate("data", x.shape[0]):
        q_y = dist.Categorical(logits=Q_LOGITS.expand(x.shape[0], K))
        y = pyro.sample("y", q_y, infer={"enumerate": "parallel"})
        # roughly the posterior of z given x and y, deliberately not exact
        loc = 0.7 * x[:, 0] + 0.3 * MU[y]
        pyro.sample("z", dist.Normal(loc, 0.6))


def continuous_exact(x):
    return torch.logsumexp(PI.log() + dist.Normal(MU, math.sqrt(1 + NOISE**2)).log_prob(x), -1)


def test_linear_gaussian_with_a_discrete_latent_is_within_monte_carlo_error():
    s = 100
    pyro.set_rng_seed(0)
    w = importance_weights(continuous_model, continuous_guide, X, s).log_w.double()
    estimate = torch.logsumexp(w, 0) - math.log(s)
    # delta-method standard error of log mean(w): sd(w) / (sqrt(S) mean(w))
    ratio = (w - w.max(0).values).exp()
    se = ratio.std(0) / (math.sqrt(s) * ratio.mean(0))
    error = (estimate - continuous_exact(X).double()).abs()
    assert (error < 4 * se + 1e-3).all(), (error, se)
    assert (se > 1e-4).all()  # z is sampled: the test has Monte-Carlo error to allow


def test_sampling_y_instead_of_summing_is_farther_from_the_closed_form():
    exact = continuous_exact(X)

    def mean_error(enumerate_sites: bool) -> float:
        errors = []
        for seed in range(10):
            pyro.set_rng_seed(seed)
            ll = log_likelihood(
                continuous_model, continuous_guide, X, 20, enumerate_sites=enumerate_sites
            )
            errors.append((ll.log_px - exact).abs().mean())
        return float(torch.stack(errors).mean())

    summed, sampled = mean_error(True), mean_error(False)
    assert summed < sampled / 2, (summed, sampled)


def test_enumerate_sites_false_samples_the_marked_sites():
    pyro.set_rng_seed(1)
    sampled = log_likelihood(discrete_model, discrete_guide, X, 1, enumerate_sites=False)
    assert sampled.summed_sites == ()
    assert not torch.allclose(sampled.log_px, torch.logsumexp(discrete_joint(X), -1), atol=1e-2)


def test_a_site_enumerated_inside_a_nested_plate_is_refused_by_name():
    def model(x):
        with pyro.plate("data", x.shape[0], dim=-2), pyro.plate("features", 1, dim=-1):
            c = pyro.sample("c", dist.Categorical(PI))
            pyro.sample("x", dist.Normal(MU[c], 1.0), obs=x)

    def guide(x):
        with pyro.plate("data", x.shape[0], dim=-2), pyro.plate("features", 1, dim=-1):
            pyro.sample("c", dist.Categorical(PI), infer={"enumerate": "parallel"})

    with pytest.raises(SiteError, match="site 'c' is enumerated inside a plate nested"):
        log_likelihood(model, guide, X, 2, max_plate_nesting=2)


# A global latent: theta ~ N(0, 1), x_n | theta ~ N(theta, 1); q(theta) the exact posterior given
# TRAIN, so the held-out predictive density of a new x is N(x; m, 1 + v) in closed form.
TRAIN = torch.tensor([0.3, 1.2, -0.4, 0.9, 1.5, 0.1, 0.8])
POST_VAR = 1.0 / (1.0 + len(TRAIN))
POST_MEAN = POST_VAR * float(TRAIN.sum())


def global_model(x):
    theta = pyro.sample("theta", dist.Normal(0.0, 1.0))
    with pyro.plate("data", x.shape[0]):
        pyro.sample("x", dist.Normal(theta.unsqueeze(-1), 1.0).to_event(1), obs=x)


def global_guide(x):
    pyro.sample("theta", dist.Normal(POST_MEAN, math.sqrt(POST_VAR)))


def test_global_latent_gives_the_held_out_predictive_density():
    pyro.set_rng_seed(0)
    ll = log_likelihood(global_model, global_guide, X, 20000)
    exact = dist.Normal(POST_MEAN, math.sqrt(1.0 + POST_VAR)).log_prob(X[:, 0])
    assert torch.allclose(ll.log_px, exact, atol=0.02), (ll.log_px, exact)
    assert ll.global_sites == ("theta",)
