"""Flows against exact answers: change of variables by brute force, inverses, the entropy bound,
the IAF posterior's density, and IS log p(x) with an IAF guide against a closed form."""

import math

import pyro.distributions as dist
import pytest
import torch
from pyro.infer import Trace_ELBO
from test_evaluate import DATA, LATENT, linear_gaussian
from torch.autograd.functional import jacobian

from pyromix.compare import compare_runs
from pyromix.evaluate import log_likelihood
from pyromix.flows import flow_stack, iaf_stack, infer_levels
from pyromix.guides import GaussianGuide, IAFGuide, UniformDequantization
from pyromix.models import FlowDensity, FlowPrior
from pyromix.nn import NormalHead, mlp
from pyromix.recipes import get_recipe
from pyromix.runs import evaluate_run, prepare_recipe, train_recipe


def perturb_(module, scale=0.3):
    """Random weights, so no layer starts at (or near) the identity."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))
    return module


def inverse(transforms, x):
    for t in reversed(transforms):
        x = t.inv(x)
    return x


def brute_force_log_prob(transforms, x):
    """log N(f(x); 0, I) + log |det df/dx| with f the inverse map, J by autograd, point by point."""
    out = []
    for point in x:
        z = inverse(transforms, point)
        J = jacobian(lambda v: inverse(transforms, v), point)
        base = dist.Normal(0.0, 1.0).log_prob(z).sum()
        out.append(base + torch.linalg.slogdet(J).logabsdet)
    return torch.stack(out)


@pytest.mark.parametrize(
    "dim, kind, levels",
    [(4, "coupling", None), (5, "coupling", 17), (4, "spline", 2), (1, "spline", None)],
)
def test_flow_log_density_is_the_change_of_variables(dim, kind, levels):
    # Double precision: near the edges of the inverse logit float32 loses digits in both.
    flow = FlowDensity(perturb_(flow_stack(dim, 3, [8], kind)), dim, levels).double()
    flow.data_loc.fill_(0.3), flow.data_scale.fill_(2.0)
    density = flow.distribution()
    x = density.sample((6,)) + 0.0  # points of the support; a fresh tensor has no cached inverse
    exact = brute_force_log_prob(density.transforms, x)
    assert torch.allclose(density.log_prob(x), exact, atol=1e-8)


@pytest.mark.parametrize("dim, kind", [(6, "coupling"), (3, "spline"), (1, "spline")])
def test_inverse_of_forward_is_the_identity(dim, kind):
    # Double precision: a spline's inverse solves a quadratic, which float32 resolves to ~1e-2.
    transforms = perturb_(flow_stack(dim, 4, [8], kind)).double()
    e = torch.randn(10, dim, dtype=torch.float64)
    x = e
    for t in transforms:
        x = t(x)
    assert not torch.allclose(x, e, atol=1e-2)  # the layers do something
    assert torch.allclose(inverse(transforms, x + 0.0), e, atol=1e-8)


def test_levels_are_read_off_the_data():
    assert infer_levels(torch.arange(17.0) / 16) == 17
    assert infer_levels(torch.tensor([0.0, 1.0, 1.0])) == 2
    assert infer_levels(torch.rand(100)) is None
    assert infer_levels(torch.tensor([0.0, 2.0])) is None


def test_dequantized_likelihood_of_a_discrete_distribution_approaches_its_entropy():
    """The flow's bound E_u log p(k + u) <= log P(k), so E[-log p(k + u)] >= H(P); a flexible
    flow fitted to samples of P comes close to H from above (a smooth density cannot be flat on
    every cell, so a small gap stays: 0.035 nats here)."""
    probs = torch.tensor([0.1, 0.4, 0.05, 0.3, 0.15])
    levels = len(probs)
    entropy = float(-(probs * probs.log()).sum())

    def sample(n):
        return (dist.Categorical(probs).sample((n,)).float() / (levels - 1))[:, None]

    flow = FlowDensity(flow_stack(1, 2, [], "spline", bins=16), 1, levels)
    guide = UniformDequantization(1)
    elbo = Trace_ELBO()
    held_out = sample(20_000)

    def bound():  # -E log p(k + u) in nats
        with torch.no_grad():
            return float(elbo.loss(flow, guide, held_out)) / len(held_out)

    start = bound()
    optimizer = torch.optim.Adam(flow.parameters(), lr=2e-2)
    for _ in range(300):
        optimizer.zero_grad()
        x = sample(256)
        (elbo.differentiable_loss(flow, guide, x) / len(x)).backward()
        optimizer.step()
    assert start > entropy + 0.3
    assert entropy - 0.02 < bound() < entropy + 0.06
    with torch.no_grad():  # P(k) = integral of p over the cell [k, k + 1)
        cells = torch.arange(levels)[:, None, None] + torch.rand(levels, 4000, 1)
        model_pmf = flow.distribution().log_prob(cells).exp().mean(1)
    # The inverse logit reaches a little beyond [0, L) (alpha = 0.05): a sliver of mass is lost.
    assert 0.97 < model_pmf.sum() <= 1.0 + 0.01
    assert torch.allclose(model_pmf, probs, atol=0.05)


def test_flow_prior_density_and_samples_are_the_flows():
    prior = FlowPrior(perturb_(flow_stack(3, 2, [8])), 3)
    z = prior().sample((4,)) + 0.0
    assert torch.allclose(
        prior().log_prob(z), brute_force_log_prob(list(prior.transforms), z), atol=1e-4
    )


def iaf_guide(data_dim=4, latent=3):
    encoder = NormalHead(mlp(data_dim, [8]), latent)
    return perturb_(IAFGuide(encoder, iaf_stack(latent, 8, 2, [8])))


def test_iaf_log_q_is_the_brute_force_jacobian():
    guide = iaf_guide()
    x = torch.randn(5, 4)
    q = guide.posterior(x)
    z = q.rsample()
    h = guide.encoder.body(x)
    base = guide.encoder.head(h)
    for i in range(len(x)):
        forward = lambda e, h_i=h[i]: _through(guide, h_i, e)  # noqa: E731
        e = z[i]
        for flow in reversed(guide.flows):
            e = flow.condition(h[i]).inv(e)
        J = jacobian(forward, e)
        exact = (base.log_prob(e)[i] - torch.linalg.slogdet(J).logabsdet).detach()
        assert float(q.log_prob(z)[i].detach()) == pytest.approx(
            float(exact), abs=1e-4
        )  # cached draw
        fresh = guide.posterior(x[i : i + 1]).log_prob(z[i : i + 1].detach() + 0.0)
        assert float(fresh) == pytest.approx(float(exact), abs=1e-4)  # inverse computed


def _through(guide, h, e):
    for flow in guide.flows:
        e = flow.condition(h)(e)
    return e


def test_importance_sampled_log_likelihood_with_an_iaf_guide_matches_the_closed_form():
    """An IAF guide whose Gaussian starts at the exact posterior (inflated) and whose flows are
    random: still a proper proposal, so IS log p(x) converges to log N(x; b, W W^T + s^2 I)."""
    model, gaussian, x, exact = linear_gaussian(inflate=1.5)
    proposal = gaussian.encoder
    body = torch.nn.Identity()
    body.out_features = DATA
    encoder = NormalHead(body, LATENT)
    with torch.no_grad():
        gain = proposal.weight @ proposal.cov.T / 0.5**2  # mean = (x - b) W cov / s^2
        encoder.loc.weight.copy_(gain.T)
        encoder.loc.bias.copy_(-(proposal.bias @ gain))
        encoder.raw_scale.weight.zero_()
        scale = proposal.inflate * proposal.cov.diagonal().sqrt()
        encoder.raw_scale.bias.copy_(torch.log(torch.expm1(scale)))
    flows = iaf_stack(LATENT, DATA, 2, [8])
    with torch.no_grad():
        for p in flows.parameters():
            p.mul_(0.3)
    guide = IAFGuide(encoder, flows)
    result = log_likelihood(model, guide, x, 20_000)
    assert torch.allclose(result.log_px.double(), exact.double(), atol=0.02)
    assert torch.all(result.elbo < result.log_px)
    assert math.isfinite(float(result.pareto_k.max()))


@pytest.mark.parametrize(
    "name, options", [("vae", {"guide": "iaf"}), ("iwae", {"guide": "iaf", "prior": "flow"})]
)
def test_vae_with_flows_trains_and_evaluates_with_pareto_k(name, options):
    run = train_recipe(
        name,
        "digits",
        hidden=[16],
        latent_dim=2,
        limit=60,
        epochs=2,
        flows=2,
        progress=False,
        **options,
    )
    kind = IAFGuide if options.get("guide") == "iaf" else GaussianGuide
    assert isinstance(run.guide, kind)
    assert isinstance(run.model.prior, FlowPrior) == (options.get("prior") == "flow")
    metrics = evaluate_run(run, 30)
    assert metrics["test_elbo"] <= metrics["test_log_likelihood"] < 0
    assert math.isfinite(metrics["pareto_k_max"])
    x, _ = next(run.dataset.train_batches(8, torch.Generator().manual_seed(0)))
    get_recipe(name).objective(run.args).loss_and_grads(run.model, run.guide, x)
    for module in (run.model, run.guide):
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in module.parameters())


@pytest.mark.parametrize(
    "options, message",
    [
        ({"guide": "maf"}, "guide: expected one of"),
        ({"prior": "flow", "flows": 0}, "flows: expected an integer >= 1"),
        ({"prior": "vamp"}, "prior: expected one of"),
    ],
)
def test_bad_flow_options_are_refused_before_training(options, message):
    with pytest.raises(ValueError, match=message):
        prepare_recipe("vae", "digits", limit=40, **options)


def test_flow_refuses_a_coupling_in_one_dimension_and_vaes_refuse_the_flow_likelihood():
    with pytest.raises(ValueError, match="affine couplings need dim >= 2"):
        flow_stack(1, 2, [8], "coupling")
    with pytest.raises(ValueError, match="likelihood: expected one of 'auto', 'bernoulli'.*, got 'flow'"):
        prepare_recipe("vae", "digits", limit=40, likelihood="flow")


def test_compare_ranks_a_binarised_flow_with_vaes_and_refuses_the_17_level_flow(tmp_path):
    small = dict(hidden=[16], epochs=1, limit=40, progress=False)
    train_recipe("vae", "digits", out=tmp_path / "vae", latent_dim=2, **small)
    train_recipe("flow", "digits", out=tmp_path / "flow2", binarize="dynamic", flows=2, **small)
    train_recipe("flow", "digits", out=tmp_path / "flow17", flows=2, **small)
    rows = compare_runs([tmp_path / "vae", tmp_path / "flow2"], 30)
    assert {row["model"] for row in rows} == {"vae", "flow"}
    assert all(math.isfinite(row["log_likelihood"]) for row in rows)
    with pytest.raises(ValueError, match="not comparable numbers.*17-level data"):
        compare_runs([tmp_path / "vae", tmp_path / "flow17"], 30)


def test_flow_metrics_give_bits_per_dim_on_its_levels():
    run = train_recipe("flow", "digits", hidden=[16], flows=2, epochs=1, limit=40, progress=False)
    metrics = evaluate_run(run, 30)
    assert run.args["levels"] == 17 and metrics["footing"] == "probability of 17-level data"
    assert metrics["bits_per_dim"] == pytest.approx(
        -metrics["test_log_likelihood"] / (64 * math.log(2))
    )
    samples = run.model.generate(10)
    assert torch.equal(samples * 16, (samples * 16).round()) and samples.max() <= 1
