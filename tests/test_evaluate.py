"""Evaluation against exact answers: a linear-Gaussian VAE with log p(x) in closed form."""

import itertools
import math

import numpy as np
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import RenyiELBO
from torch import nn

from pyromix.evaluate import (
    bits_per_dim,
    cluster_accuracy,
    clustering_scores,
    latent_gmm,
    log_importance_weights,
    log_likelihood,
)
from pyromix.guides import GaussianGuide
from pyromix.likelihoods import GaussianLikelihood
from pyromix.models import VAE

LATENT, DATA, NOISE = 2, 3, 0.5


class PosteriorProposal(nn.Module):
    """q(z | x): the exact posterior mean, plus ``offset``, with ``inflate`` x its marginal stds."""

    def __init__(self, weight, bias, inflate=1.5, offset=0.0):
        super().__init__()
        precision = torch.eye(LATENT) + weight.T @ weight / NOISE**2
        self.cov = torch.linalg.inv(precision)
        self.weight, self.bias, self.inflate, self.offset = weight, bias, inflate, offset

    def forward(self, x):
        mean = (x - self.bias) @ self.weight @ self.cov.T / NOISE**2 + self.offset
        scale = self.inflate * self.cov.diagonal().sqrt().expand_as(mean)
        return dist.Normal(mean, scale).to_event(1)


def linear_gaussian(inflate=1.5, offset=0.0):
    """x = W z + b + noise, z ~ N(0, I): log p(x) = log N(x; b, W W^T + sigma^2 I)."""
    decoder = nn.Linear(LATENT, DATA)
    with torch.no_grad():
        decoder.weight.copy_(torch.tensor([[1.0, -0.5], [0.3, 0.8], [-1.2, 0.4]]))
        decoder.bias.copy_(torch.tensor([0.2, -0.1, 0.5]))
    likelihood = GaussianLikelihood(decoder, DATA, std_min=0.0)
    with torch.no_grad():  # softplus(raw) = NOISE
        likelihood.log_scale.fill_(math.log(NOISE))
    model = VAE(likelihood, LATENT)
    guide = GaussianGuide(
        PosteriorProposal(decoder.weight.detach(), decoder.bias.detach(), inflate, offset)
    )
    W, b = decoder.weight.detach(), decoder.bias.detach()
    marginal = dist.MultivariateNormal(b, W @ W.T + NOISE**2 * torch.eye(DATA))
    x = marginal.sample((6,))
    return model, guide, x, marginal.log_prob(x)


def test_importance_sampled_log_likelihood_converges_to_closed_form():
    model, guide, x, exact = linear_gaussian()
    num_samples = 20_000
    log_w = log_importance_weights(model, guide, x, num_samples).double()
    w = (log_w - log_w.max(0).values).exp()
    # Delta method: sd(log mean w) ~ sd(w) / (mean(w) sqrt(S)).
    std_error = w.std(0) / (w.mean(0) * math.sqrt(num_samples))
    result = log_likelihood(model, guide, x, num_samples)
    assert torch.all((result.log_px.double() - exact).abs() < 5 * std_error + 1e-3)
    assert torch.all(result.elbo < exact)  # the gap is KL(q || posterior) > 0 for this q
    assert torch.all(result.elbo <= result.log_px)
    assert result.pareto_k.max() < 0.7


def test_chunked_estimate_matches_closed_form_under_a_tiny_memory_budget():
    model, guide, x, exact = linear_gaussian()
    result = log_likelihood(model, guide, x, 4000, max_elements=500)  # many point and sample chunks
    assert result.log_px.shape == (6,) and result.num_samples == 4000
    assert torch.allclose(result.log_px, exact.float(), atol=0.05)


def test_iwae_bound_increases_with_k_towards_log_px():
    model, guide, x, exact = linear_gaussian(inflate=2.0, offset=0.3)
    log_w = log_importance_weights(model, guide, x, 2**15).double()
    bounds = []
    for k in (1, 2, 8, 64, 512):
        groups = log_w.reshape(-1, k, x.shape[0])
        bounds.append((torch.logsumexp(groups, 1) - math.log(k)).mean(0))
    bounds = torch.stack(bounds)  # (k values, points)
    assert torch.all(bounds[1:] >= bounds[:-1] - 1e-3)
    assert torch.all(bounds[-1] - bounds[0] > 0.05)  # this proposal leaves a real gap at k = 1
    assert torch.all(bounds[-1] <= exact + 0.02)


def test_renyi_elbo_alpha_zero_is_the_per_point_iwae_bound():
    """The iwae recipe's objective: logsumexp over particles is taken per data point."""
    model, guide, x, _ = linear_gaussian(inflate=2.0)
    k = 7
    torch.manual_seed(3)
    loss = RenyiELBO(
        alpha=0.0, num_particles=k, vectorize_particles=True, max_plate_nesting=1
    ).loss(model, guide, x)
    torch.manual_seed(3)
    log_w = log_importance_weights(model, guide, x, k)
    per_point = torch.logsumexp(log_w, 0) - math.log(k)
    assert loss == pytest.approx(-per_point.sum().item(), rel=1e-5)
    whole_batch = torch.logsumexp(log_w.sum(1), 0) - math.log(k)  # what a per-batch bound gives
    assert loss != pytest.approx(-whole_batch.item(), rel=1e-3)


def test_pareto_k_flags_a_poor_proposal_in_one_line_naming_the_flag():
    model, guide, x, _ = linear_gaussian(inflate=0.3, offset=1.0)
    poor = log_likelihood(model, guide, x, 2000)
    assert poor.pareto_k.min() > 0.7
    line = poor.too_few_samples()
    assert "100% of the points have Pareto k > 0.7" in line and "raise --samples" in line
    assert "\n" not in line
    model, guide, x, _ = linear_gaussian()  # a good proposal: k below 0.7, nothing said
    good = log_likelihood(model, guide, x, 2000)
    assert good.pareto_k.max() < 0.7 and good.too_few_samples() is None


def test_pareto_k_is_nan_not_infinite_when_too_few_samples():
    model, guide, x, _ = linear_gaussian()
    result = log_likelihood(model, guide, x, 10)
    assert torch.isnan(result.pareto_k).all()
    summary = result.summary()
    assert math.isnan(summary["pareto_k_max"]) and math.isnan(summary["pareto_k_share_above_0.7"])
    single = log_likelihood(model, guide, x, 1)  # one sample: the estimate is the ELBO estimate
    assert torch.allclose(single.log_px, single.elbo)


def test_log_likelihood_rejects_bad_arguments():
    model, guide, x, _ = linear_gaussian()
    with pytest.raises(ValueError, match="num_samples"):
        log_likelihood(model, guide, x, 0)
    with pytest.raises(ValueError, match=r"x: expected a non-empty \(N, D\)"):
        log_likelihood(model, guide, x[0], 10)


def test_bits_per_dim():
    assert bits_per_dim(-4 * math.log(2.0), 4) == pytest.approx(1.0)
    assert bits_per_dim(torch.tensor([-64 * math.log(2.0) * 0.5]), 64).item() == pytest.approx(0.5)


def brute_force_accuracy(y_true, y_pred):
    clusters, classes = np.unique(y_pred), np.unique(y_true)
    best = 0
    for targets in itertools.permutations(range(max(len(clusters), len(classes))), len(clusters)):
        mapping = {c: classes[t] if t < len(classes) else None for c, t in zip(clusters, targets)}
        best = max(best, sum(mapping[p] == t for p, t in zip(y_pred, y_true)))
    return best / len(y_true)


def test_accuracy_is_one_for_a_permuted_labelling():
    y = np.repeat(np.arange(5), 7)
    permuted = np.array([3, 0, 4, 1, 2])[y] + 10  # any cluster ids
    assert cluster_accuracy(y, permuted) == 1.0
    assert clustering_scores(y, permuted) == {"acc": 1.0, "nmi": pytest.approx(1.0), "ari": 1.0}


@pytest.mark.parametrize("n_clusters", [3, 5, 6])
def test_accuracy_matches_brute_force_including_more_clusters_than_classes(n_clusters):
    rng = np.random.default_rng(n_clusters)
    y_true = rng.integers(0, 3, size=40)
    y_pred = np.where(rng.random(40) < 0.6, y_true, rng.integers(0, n_clusters, size=40))
    assert cluster_accuracy(y_true, y_pred) == pytest.approx(brute_force_accuracy(y_true, y_pred))


def test_more_clusters_than_classes_one_to_one_and_majority():
    y_true = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    y_pred = np.array([0, 0, 2, 2, 1, 1, 1, 2])  # class 0 split; cluster 2 mostly class 0
    assert cluster_accuracy(y_true, y_pred) == pytest.approx(5 / 8)
    assert cluster_accuracy(y_true, y_pred, many_to_one=True) == pytest.approx(7 / 8)


def test_accuracy_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="equal length"):
        cluster_accuracy([0, 1], [0])


def test_latent_gmm_recovers_separated_clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10]])
    labels = np.repeat(np.arange(3), 30)
    z = torch.tensor(centres[labels] + rng.normal(size=(90, 2)), dtype=torch.float32)
    assert cluster_accuracy(labels, latent_gmm(z, 3)) == 1.0
    with pytest.raises(ValueError, match="n_components"):
        latent_gmm(z[:2], 3)


def test_chunks_count_a_mixture_priors_k_times_latent_numbers(monkeypatch):
    """A VampPrior's log-density holds K x latent_dim numbers per sample, more than D: the
    sample chunks shrink so that points x samples x that width stays within max_elements."""
    from pyromix import evaluate
    from pyromix.runs import prepare_recipe

    run = prepare_recipe("vampprior", "digits", limit=40, latent_dim=4, components=50)
    width = evaluate.numbers_per_sample(run.model, run.dataset.data_dim)
    assert width == 50 * 4 > run.dataset.data_dim == 64
    assert evaluate.numbers_per_sample(lambda x: None, 64) == 64  # a plain callable: D
    seen = []
    real = evaluate.importance_weights

    def record(model, guide, chunk, samples, **options):
        seen.append((chunk.shape[0], samples))
        return real(model, guide, chunk, samples, **options)

    monkeypatch.setattr(evaluate, "importance_weights", record)
    budget = 4000
    test = run.dataset.test.x[:6]
    result = evaluate.log_likelihood(run.model, run.guide, test, 40, max_elements=budget)
    assert torch.isfinite(result.log_px).all() and len(seen) > 1
    assert all(points * samples * width <= budget for points, samples in seen)
    assert sum(s for p, s in seen if p == seen[0][0]) == 40  # every sample drawn for a chunk
