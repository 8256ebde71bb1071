"""VIMCO against exact answers: IWAE value, direct leave-one-out signals, enumerated gradients."""

import itertools
import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import RenyiELBO
from torch.nn import functional as F

from pyromix.infer import VIMCO, scale_latents
from pyromix.infer import vimco as vimco_module
from pyromix.infer.vimco import vimco_learning_signals

# ---------------------------------------------------------------- a mixture with sampled y


def mixture_model(x):
    """y ~ Cat(pi); z | y ~ N(mu_y, 1); x | z ~ N(z, 1), with pi and mu learned."""
    logits = pyro.param("pi_logits", torch.tensor([0.2, -0.1, 0.0]))
    mu = pyro.param("mu", torch.tensor([[-2.0, 0.5], [0.0, 0.0], [1.5, -1.0]]))
    with pyro.plate("data", x.shape[0]):
        y = pyro.sample("y", dist.Categorical(logits=logits))
        z = pyro.sample("z", dist.Normal(mu[y], 1.0).to_event(1))
        pyro.sample("x", dist.Normal(z, 1.0).to_event(1), obs=x)


def mixture_guide(x, enumerate_y=False):
    """q(y | x) = Cat(softmax(W x + b)); q(z | x, y) = N(A x + c_y, softplus(s_y))."""
    w = pyro.param("w_y", 0.3 * torch.ones(2, 3))
    b = pyro.param("b_y", torch.zeros(3))
    a = pyro.param("a_z", 0.5 * torch.eye(2))
    c = pyro.param("c_z", torch.tensor([[-1.0, 0.0], [0.0, 0.5], [1.0, -0.5]]))
    s = pyro.param("s_z", torch.zeros(3, 2))
    infer = {"enumerate": "parallel"} if enumerate_y else {}
    with pyro.plate("data", x.shape[0]):
        y = pyro.sample("y", dist.Categorical(logits=x @ w + b), infer=infer)
        pyro.sample("z", dist.Normal(x @ a + c[y], F.softplus(s[y])).to_event(1))


def gaussian_model(x):
    """The reparameterised part alone: z ~ N(mu, 1); x | z ~ N(z, 1)."""
    mu = pyro.param("mu", torch.tensor([0.3, -0.2]))
    with pyro.plate("data", x.shape[0]):
        z = pyro.sample("z", dist.Normal(mu, 1.0).to_event(1))
        pyro.sample("x", dist.Normal(z, 1.0).to_event(1), obs=x)


def gaussian_guide(x):
    a = pyro.param("a_z", 0.5 * torch.eye(2))
    s = pyro.param("s_z", torch.zeros(2))
    with pyro.plate("data", x.shape[0]):
        pyro.sample("z", dist.Normal(x @ a, F.softplus(s)).to_event(1))


X = torch.tensor([[1.0, -0.5], [-2.0, 0.3], [0.4, 2.2], [3.0, 1.0]])
M = 5


def site_log_densities(model, guide, x, num_particles):
    """Unscaled log p and log q per sample site, shape (M, N) each, from a vectorised trace
    drawn exactly as VIMCO draws it (same plate dim, same order of random draws)."""
    particles = pyro.plate("num_particles_vectorized", num_particles, dim=-2)
    guide_trace = poutine.trace(particles(guide)).get_trace(x)
    model_trace = poutine.trace(poutine.replay(particles(model), guide_trace)).get_trace(x)

    def densities(trace):
        return {
            name: site["fn"].log_prob(site["value"])
            for name, site in trace.nodes.items()
            if site["type"] == "sample"
        }

    return densities(model_trace), densities(guide_trace)


def log_weights(model, guide, x, num_particles):
    """log w = log p(x, h) - log q(h | x), shape (M, N)."""
    log_p, log_q = site_log_densities(model, guide, x, num_particles)
    return sum(log_p.values()) - sum(log_q.values())


def iwae(log_w):
    return (torch.logsumexp(log_w, 0) - math.log(log_w.shape[0])).sum()


# ---------------------------------------------------------------- 1. the value is the IWAE bound


def test_loss_is_the_iwae_bound_on_the_same_samples():
    pyro.set_rng_seed(3)
    loss = VIMCO(num_particles=M, max_plate_nesting=1).loss(mixture_model, mixture_guide, X)
    pyro.set_rng_seed(3)
    with torch.no_grad():
        log_w = log_weights(mixture_model, mixture_guide, X, M)
    assert log_w.shape == (M, len(X))
    assert loss == pytest.approx(-iwae(log_w).item(), rel=1e-5)


def test_loss_equals_renyi_alpha_zero_on_a_reparameterised_model():
    renyi = RenyiELBO(alpha=0, num_particles=M, vectorize_particles=True, max_plate_nesting=1)
    pyro.set_rng_seed(4)
    expected = renyi.loss(gaussian_model, gaussian_guide, X)
    pyro.set_rng_seed(4)
    loss = VIMCO(num_particles=M, max_plate_nesting=1).loss(gaussian_model, gaussian_guide, X)
    assert loss == pytest.approx(expected, rel=1e-6)


def test_gradient_equals_renyi_alpha_zero_when_nothing_is_discrete():
    params = ("mu", "a_z", "s_z")
    grads = []
    for elbo in (
        RenyiELBO(alpha=0, num_particles=M, vectorize_particles=True, max_plate_nesting=1),
        VIMCO(num_particles=M, max_plate_nesting=1),
    ):
        pyro.clear_param_store()
        pyro.set_rng_seed(5)
        elbo.loss_and_grads(gaussian_model, gaussian_guide, X)
        grads.append([pyro.param(name).unconstrained().grad.clone() for name in params])
    for renyi, vimco in zip(*grads):
        assert torch.allclose(renyi, vimco, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- 2. leave-one-out signals


def direct_learning_signals(log_w):
    """L_hat - L_hat_{-m} from the definition, in float64 plain Python, one particle at a time."""
    m_total = len(log_w)

    def log_mean_exp(values):
        top = max(values)
        return top + math.log(sum(math.exp(v - top) for v in values) / len(values))

    bound = log_mean_exp(log_w)
    signals = []
    for m in range(m_total):
        others = [v for j, v in enumerate(log_w) if j != m]
        geometric = sum(others) / (m_total - 1)
        signals.append(bound - log_mean_exp(others + [geometric]))
    return signals


@pytest.mark.parametrize(
    "log_w",
    [
        [0.3, -1.2, 2.0, 0.0, -0.7],
        [-1e4, 0.0, -3.0],
        [0.0, -1e4, -1e4, -2e4],
        [-1e4, 0.0],
        [5.0, 5.0, 5.0],
    ],
)
def test_learning_signals_equal_the_direct_leave_one_out_computation(log_w):
    signals = vimco_learning_signals(torch.tensor(log_w, dtype=torch.float64))
    assert torch.isfinite(signals).all()
    assert signals.tolist() == pytest.approx(direct_learning_signals(log_w), rel=1e-9, abs=1e-9)


def test_learning_signals_broadcast_over_data_points_and_stay_finite_in_float32():
    log_w = torch.tensor([[0.0, -1e4, 1.0], [-1e4, -1e4, 2.0], [0.5, 0.0, -1e4], [1.0, -2.0, 3.0]])
    signals = vimco_learning_signals(log_w)
    assert signals.shape == log_w.shape and torch.isfinite(signals).all()
    for i in range(log_w.shape[1]):
        expected = direct_learning_signals(log_w[:, i].double().tolist())
        assert signals[:, i].tolist() == pytest.approx(expected, rel=1e-4, abs=1e-3)


def test_learning_signals_need_two_particles():
    with pytest.raises(ValueError, match="M >= 2"):
        vimco_learning_signals(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="num_particles"):
        VIMCO(num_particles=1)


# ---------------------------------------------------------------- 3. gradient vs brute force

MU = torch.tensor([-2.0, 0.0, 3.0])
THETA0 = torch.tensor([0.3, -0.4, 0.1])
PHI0 = torch.tensor([-0.5, 0.8, 0.2])
X0 = 2.5
K = 3  # the particles of the exact check: 3^K joint assignments


def exact_bound(theta, phi):
    """E_{y_1..K ~ q}[log (1/K) sum_m w_m] by summing over all 3^K particle assignments."""
    ys = torch.tensor(list(itertools.product(range(3), repeat=K)))  # (27, K)
    log_q = torch.log_softmax(phi, -1)[ys]
    log_p = torch.log_softmax(theta, -1)[ys] + dist.Normal(MU[ys], 1.0).log_prob(torch.tensor(X0))
    bound = torch.logsumexp(log_p - log_q, -1) - math.log(K)
    return (log_q.sum(-1).exp() * bound).sum()


def replicated_model(x):
    theta = pyro.param("theta", THETA0.expand(len(x), 3).clone())
    with pyro.plate("data", len(x)):
        y = pyro.sample("y", dist.Categorical(logits=theta))
        pyro.sample("x", dist.Normal(MU[y], 1.0), obs=x)


def replicated_guide(x):
    phi = pyro.param("phi", PHI0.expand(len(x), 3).clone())
    with pyro.plate("data", len(x)):
        pyro.sample("y", dist.Categorical(logits=phi))


def independent_gradient_estimates(replicas):
    """One VIMCO step on `replicas` copies of x0, each with its own copy of theta and phi: row r
    of each parameter's gradient is an independent estimate of the gradient of the loss."""
    x = torch.full((replicas,), X0)
    elbo = VIMCO(num_particles=K, max_plate_nesting=1)
    elbo.loss_and_grads(replicated_model, replicated_guide, x)
    return {name: pyro.param(name).unconstrained().grad for name in ("theta", "phi")}


def exact_gradients():
    theta, phi = THETA0.clone().requires_grad_(), PHI0.clone().requires_grad_()
    theta_grad, phi_grad = torch.autograd.grad(-exact_bound(theta, phi), (theta, phi))
    return {"theta": theta_grad, "phi": phi_grad}


def test_gradient_is_unbiased_for_the_exact_multi_sample_bound():
    replicas = 4000
    estimates = independent_gradient_estimates(replicas)
    for name, exact in exact_gradients().items():
        mean = estimates[name].mean(0)
        sem = estimates[name].std(0) / math.sqrt(replicas)
        assert exact.abs().max() > 0.1  # the check is not vacuous
        assert ((mean - exact).abs() < 4 * sem + 1e-3).all(), (name, mean, exact, sem)


def test_leave_one_out_baseline_reduces_the_variance(monkeypatch):
    """Without the baseline (signal L_hat for every particle) the estimate is still unbiased but
    its variance is several times larger."""
    replicas = 4000
    vimco_variance = independent_gradient_estimates(replicas)["phi"].var(0).sum()

    def no_baseline(log_w):
        bound = torch.logsumexp(log_w, 0) - math.log(log_w.shape[0])
        return bound.expand_as(log_w)

    pyro.clear_param_store()
    monkeypatch.setattr(vimco_module, "vimco_learning_signals", no_baseline)
    naive = independent_gradient_estimates(replicas)["phi"]
    exact = exact_gradients()["phi"]
    sem = naive.std(0) / math.sqrt(replicas)
    assert ((naive.mean(0) - exact).abs() < 4 * sem + 1e-3).all()
    assert naive.var(0).sum() > 3 * vimco_variance


# ---------------------------------------------------------------- 4. scale


@pytest.mark.parametrize("scale", [0.5, 3.0])
def test_a_global_scale_tempers_the_log_weights(scale):
    """Documented semantics: log w is formed from scaled log-densities, so a scale c on every
    site gives sum_x logsumexp_m(c log w_m) - log M: not c times the unscaled bound."""
    elbo = VIMCO(num_particles=M, max_plate_nesting=1)
    model, guide = poutine.scale(mixture_model, scale), poutine.scale(mixture_guide, scale)
    pyro.set_rng_seed(6)
    loss = elbo.loss(model, guide, X)
    pyro.set_rng_seed(6)
    with torch.no_grad():
        log_w = log_weights(mixture_model, mixture_guide, X, M)
    assert loss == pytest.approx(-iwae(scale * log_w).item(), rel=1e-5)
    assert abs(loss + scale * iwae(log_w).item()) > 1e-3  # the other reading would differ
    pyro.set_rng_seed(6)
    assert elbo.loss_and_grads(model, guide, X) == pytest.approx(loss, rel=1e-6)
    for name in ("pi_logits", "mu", "w_y", "b_y", "a_z", "c_z", "s_z"):
        grad = pyro.param(name).unconstrained().grad
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_latent_scale_weights_the_prior_to_posterior_ratio_inside_the_log():
    beta = 0.3
    model, guide = scale_latents(mixture_model, beta), scale_latents(mixture_guide, beta)
    pyro.set_rng_seed(7)
    loss = VIMCO(num_particles=M, max_plate_nesting=1).loss(model, guide, X)
    pyro.set_rng_seed(7)
    with torch.no_grad():
        log_p, log_q = site_log_densities(mixture_model, mixture_guide, X, M)
    log_lik, latent = log_p["x"], sum(log_p[s] - log_q[s] for s in "yz")
    assert loss == pytest.approx(-iwae(log_lik + beta * latent).item(), rel=1e-5)


def test_scaled_score_function_gradient_is_unbiased():
    """With every site scaled by c, the objective is E_q[logmeanexp(c log w)]; its exact gradient
    by enumeration matches the mean VIMCO estimate (score functions stay unscaled)."""
    c, replicas = 0.5, 4000
    x = torch.full((replicas,), X0)
    elbo = VIMCO(num_particles=K, max_plate_nesting=1)
    elbo.loss_and_grads(poutine.scale(replicated_model, c), poutine.scale(replicated_guide, c), x)
    estimate = pyro.param("phi").unconstrained().grad

    ys = torch.tensor(list(itertools.product(range(3), repeat=K)))
    phi = PHI0.clone().requires_grad_()
    log_q = torch.log_softmax(phi, -1)[ys]
    log_p = torch.log_softmax(THETA0, -1)[ys] + dist.Normal(MU[ys], 1.0).log_prob(torch.tensor(X0))
    bound = torch.logsumexp(c * (log_p - log_q), -1) - math.log(K)
    (exact,) = torch.autograd.grad(-(log_q.sum(-1).exp() * bound).sum(), phi)
    sem = estimate.std(0) / math.sqrt(replicas)
    assert ((estimate.mean(0) - exact).abs() < 4 * sem + 1e-3).all(), (estimate.mean(0), exact)


# ---------------------------------------------------------------- 5. one core, three entry points


def test_differentiable_loss_has_the_value_of_loss_and_the_gradient_of_loss_and_grads():
    elbo = VIMCO(num_particles=M, max_plate_nesting=1)
    pyro.set_rng_seed(8)
    loss = elbo.loss(mixture_model, mixture_guide, X)
    pyro.set_rng_seed(8)
    differentiable = elbo.differentiable_loss(mixture_model, mixture_guide, X)
    assert differentiable.item() == pytest.approx(loss, rel=1e-6)
    names = ("pi_logits", "mu", "w_y", "b_y", "a_z", "c_z", "s_z")
    params = [pyro.param(name).unconstrained() for name in names]
    expected = torch.autograd.grad(differentiable, params)
    pyro.set_rng_seed(8)
    assert elbo.loss_and_grads(mixture_model, mixture_guide, X) == pytest.approx(loss, rel=1e-6)
    for grad, param in zip(expected, params):
        assert torch.allclose(param.grad, grad, rtol=1e-5, atol=1e-7)


def test_it_works_as_a_torch_module():
    pyro.set_rng_seed(9)
    loss = VIMCO(num_particles=M, max_plate_nesting=1)(mixture_model, mixture_guide)(X)
    assert loss.requires_grad and torch.isfinite(loss)


# ---------------------------------------------------------------- 6. enumeration is refused


def test_an_enumerated_site_is_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="VIMCO samples every latent site; site 'y' asks for enum"):
        VIMCO(num_particles=M, max_plate_nesting=1).loss(
            mixture_model, lambda x: mixture_guide(x, enumerate_y=True), X
        )


def test_unvectorised_particles_are_refused():
    with pytest.raises(ValueError, match="vectorize_particles"):
        VIMCO(num_particles=M, vectorize_particles=False)


# ---------------------------------------------------------------- 7. both gradient paths


def test_every_parameter_gets_a_finite_gradient_in_the_mixture_model():
    elbo = VIMCO(num_particles=M)  # max_plate_nesting guessed
    loss = elbo.loss_and_grads(mixture_model, mixture_guide, X)
    assert math.isfinite(loss)
    names = ("pi_logits", "mu", "w_y", "b_y", "a_z", "c_z", "s_z")
    for name in names:
        grad = pyro.param(name).unconstrained().grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name


def test_the_y_logits_get_the_gradient_that_renyi_does_not_give():
    """RenyiELBO(alpha=0) leaves q(y)'s logits without a gradient (its surrogate drops log q of a
    non-reparameterised site); VIMCO gives them one, and the same pathwise gradient to mu."""
    grads = []
    for elbo in (
        RenyiELBO(alpha=0, num_particles=M, vectorize_particles=True, max_plate_nesting=1),
        VIMCO(num_particles=M, max_plate_nesting=1),
    ):
        pyro.clear_param_store()
        pyro.set_rng_seed(10)
        elbo.loss_and_grads(mixture_model, mixture_guide, X)
        grads.append({n: pyro.param(n).unconstrained().grad for n in ("w_y", "mu")})
    renyi, vimco = grads
    assert torch.allclose(renyi["mu"], vimco["mu"], rtol=1e-5, atol=1e-6)
    assert renyi["w_y"] is None or not renyi["w_y"].any()
    assert vimco["w_y"].abs().sum() > 0
