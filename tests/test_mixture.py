"""The Gaussian-mixture VAE family vs exact answers: eq. 5 by brute force, closed-form log p(x)."""

import math

import pyro.distributions as dist
import pytest
import torch
from pyro.infer import TraceEnum_ELBO
from torch import nn

from pyromix.data import load_dataset
from pyromix.evaluate import log_likelihood
from pyromix.guides import GaussianGuide, MixtureGuide
from pyromix.infer import StdAnnealing
from pyromix.likelihoods import BernoulliLikelihood, GaussianLikelihood
from pyromix.models import GaussianMixtureVAE
from pyromix.nn import NormalHead, mlp
from pyromix.pretrain import init_mixture_prior, pretrain_autoencoder

K, LATENT, DATA = 3, 2, 5


def small_pair(mean_field=False, decoder_sees_y=False):
    decoder_in = LATENT + (K if decoder_sees_y else 0)
    model = GaussianMixtureVAE(
        BernoulliLikelihood(mlp(decoder_in, [8], DATA)),
        LATENT,
        K,
        learn_weights=True,
        prior_std_min=0.1,
        decoder_sees_y=decoder_sees_y,
    )
    with torch.no_grad():
        model.logits = torch.tensor([0.2, -0.5, 0.1]).log_softmax(-1)
    guide = MixtureGuide(mlp(DATA, [8]), LATENT, K, mean_field=mean_field)
    nn.init.normal_(guide.loc_offset.weight)  # zero at init; make the clusters differ
    return model, guide, torch.bernoulli(torch.full((4, DATA), 0.5))


@pytest.mark.parametrize("mean_field", [False, True])
@pytest.mark.parametrize("decoder_sees_y", [False, True])
def test_enumerated_elbo_is_eq5_by_brute_force(mean_field, decoder_sees_y):
    """sum_y q(y|x) E_q(z|x,y)[log p(x,y,z) - log q(y|x) - log q(z|x,y)] (seed 002, eq. 5)."""
    model, guide, x = small_pair(mean_field, decoder_sees_y)
    torch.manual_seed(0)
    loss = TraceEnum_ELBO(max_plate_nesting=1).loss(model, guide, x)

    torch.manual_seed(0)  # the guide's only draw is z, one per enumerated y (one in mean field)
    h = guide.body(x)
    loc, scale = guide._heads(h)  # (N, K or 1, d)
    loc, scale = loc.transpose(0, 1), scale.transpose(0, 1)  # (K or 1, N, d), the enumerated layout
    z = dist.Normal(loc, scale).rsample()
    log_qy = torch.log_softmax(guide.y_logits(h), -1).T  # (K, N)
    total = 0.0
    for y in range(K):
        zy = z[0 if mean_field else y]
        ys = torch.full((x.shape[0],), y)
        log_p = (
            model.cluster_prior().log_prob(ys)
            + model.component(ys).log_prob(zy)
            + model.likelihood(model.decoder_input(zy, ys)).log_prob(x)
        )
        log_q = log_qy[y] + dist.Normal(
            loc[0 if mean_field else y], scale[0 if mean_field else y]
        ).to_event(1).log_prob(zy)
        total = total + (log_qy[y].exp() * (log_p - log_q)).sum()
    assert loss == pytest.approx(-total.item(), rel=1e-5)


def test_marginal_prior_and_cluster_posterior_are_bayes_rule():
    model, _, _ = small_pair()
    z = torch.randn(6, LATENT)
    log_joint = torch.stack(
        [
            model.cluster_prior().log_prob(torch.tensor(y))
            + model.component(torch.tensor(y)).log_prob(z)
            for y in range(K)
        ],
        -1,
    )
    assert torch.allclose(model.prior().log_prob(z), torch.logsumexp(log_joint, -1), atol=1e-5)
    posterior = model.cluster_posterior(z)
    assert torch.allclose(posterior, torch.softmax(log_joint, -1), atol=1e-6)
    assert torch.allclose(posterior.sum(-1), torch.ones(6))
    far = model.loc[1] + 0 * z[:1]  # a point at a component's mean, far from the others
    with torch.no_grad():
        model.loc = torch.tensor([[-20.0, 0.0], [0.0, 0.0], [20.0, 0.0]])
    assert model.cluster_posterior(far * 0).argmax().item() == 1


def linear_gaussian_mixture():
    """z | y ~ N(mu_y, s_y^2), x = W z + b + N(0, 0.25): p(x) = sum_y pi_y N(x; W mu_y + b, .)."""
    decoder = nn.Linear(LATENT, DATA)
    likelihood = GaussianLikelihood(decoder, DATA, std_min=0.0)
    with torch.no_grad():
        likelihood.log_scale.fill_(math.log(0.5))
    model = GaussianMixtureVAE(likelihood, LATENT, K, learn_weights=True)
    with torch.no_grad():
        model.loc = torch.tensor([[-2.0, 0.0], [0.0, 2.0], [2.0, -1.0]])
        model.raw_scale = torch.tensor([[0.0, 0.3], [-0.5, 0.0], [0.2, 0.2]])
        model.logits = torch.tensor([0.5, 0.3, 0.2]).log()
    W, b = decoder.weight.detach(), decoder.bias.detach()
    components = dist.MultivariateNormal(
        model.loc @ W.T + b, W @ torch.diag_embed(model.scale**2) @ W.T + 0.25 * torch.eye(DATA)
    )
    marginal = dist.MixtureSameFamily(dist.Categorical(logits=model.logits), components)
    return model, marginal


def test_importance_sampling_with_sampled_clusters_matches_closed_form():
    model, marginal = linear_gaussian_mixture()
    guide = MixtureGuide(mlp(DATA, [4]), LATENT, K)  # q(y) uniform, q(z|y) = N(mu_y, 2^2): wide
    with torch.no_grad():
        for layer in (guide.y_logits, guide.loc, guide.loc_offset, guide.raw_scale):
            layer.weight.zero_(), layer.bias.zero_()
        guide.loc_offset.bias.copy_(model.loc.detach().flatten())
        guide.raw_scale.bias.fill_(math.log(math.expm1(2.0)))
    x = marginal.sample((5,))
    result = log_likelihood(model, guide, x, 20_000)
    assert torch.allclose(result.log_px, marginal.log_prob(x), atol=0.05)
    vade = GaussianMixtureVAE(model.likelihood, LATENT, K, learn_weights=True, marginalize_y=True)
    vade.load_state_dict(model.state_dict())
    wide = GaussianGuide(NormalHead(mlp(DATA, [4]), LATENT))
    with torch.no_grad():
        wide.encoder.loc.weight.zero_(), wide.encoder.raw_scale.weight.zero_()
        wide.encoder.raw_scale.bias.fill_(math.log(math.expm1(1.5)))  # covers all three components
    assert torch.allclose(
        log_likelihood(vade, wide, x, 50_000).log_px, marginal.log_prob(x), atol=0.05
    )


def test_generate_from_one_cluster_uses_that_component():
    model, _ = linear_gaussian_mixture()
    with torch.no_grad():
        model.raw_scale = torch.full((K, LATENT), -30.0)  # near-deterministic z = mu_y
    expected = model.likelihood.mean(model.loc[2]).expand(4, DATA)
    assert torch.allclose(model.generate(4, component=2), expected, atol=1e-4)
    with pytest.raises(ValueError, match="component"):
        model.generate(2, component=K)


def test_guide_readouts():
    _, guide, x = small_pair()
    probs = guide.cluster_probs(x)
    assert probs.shape == (4, K) and torch.allclose(probs.sum(-1), torch.ones(4))
    loc, _ = guide._heads(guide.body(x))
    assert torch.allclose(guide.latent_mean(x), (probs.unsqueeze(-1) * loc).sum(-2), atol=1e-6)
    with pytest.raises(ValueError, match="y_mode"):
        MixtureGuide(mlp(DATA, [4]), LATENT, K, y_mode="relax")


def test_std_annealing_halves_then_ends_at_the_floor():
    class Target:
        std_min = 0.0

    a, b = Target(), Target()
    schedule = StdAnnealing([a, b], epochs=50, every=10)
    values = [schedule.value(e) for e in (0, 9, 10, 25, 39, 40, 49)]
    assert values == [1.0, 1.0, 0.5, 0.25, 0.125, 1e-4, 1e-4]
    schedule(25)
    assert a.std_min == b.std_min == 0.25
    assert StdAnnealing([a], epochs=100).every == 10  # scaled to the run: a tenth of it
    with pytest.raises(ValueError, match="std_min"):
        StdAnnealing([object()], epochs=10)


def test_pretraining_lowers_reconstruction_and_gmm_sets_the_prior():
    data = load_dataset("digits", binarize="static", limit=120)
    model = GaussianMixtureVAE(
        BernoulliLikelihood(mlp(LATENT, [32], 64)),
        LATENT,
        K,
        learn_weights=True,
        prior_std_min=0.05,
    )
    guide = MixtureGuide(mlp(64, [32]), LATENT, K)
    losses = pretrain_autoencoder(
        guide.autoencoder, model.likelihood, [guide, model.likelihood], data, epochs=15
    )
    assert losses[-1] < losses[0]
    codes = guide.autoencoder(data.train.x).detach()
    gmm = init_mixture_prior(model, codes)
    assert torch.allclose(model.loc, torch.tensor(gmm.means_, dtype=torch.float32), atol=1e-5)
    assert torch.allclose(
        model.scale, torch.tensor(gmm.covariances_, dtype=torch.float32).sqrt(), atol=1e-4
    )
    assert torch.allclose(
        model.cluster_prior().probs, torch.tensor(gmm.weights_, dtype=torch.float32), atol=1e-5
    )


def test_cluster_head_learns_the_target_responsibilities():
    from pyromix.pretrain import fit_cluster_head

    guide = MixtureGuide(mlp(DATA, [16]), LATENT, K)
    x = torch.randn(150, DATA)
    targets = torch.softmax(4 * x[:, :K], -1)  # a learnable function of x
    before = (guide.cluster_probs(x).argmax(-1) == targets.argmax(-1)).float().mean()
    losses = fit_cluster_head(
        lambda v: guide.y_logits(guide.body(v)), [guide], x, targets, epochs=150, lr=1e-2
    )
    agreement = (guide.cluster_probs(x).argmax(-1) == targets.argmax(-1)).float().mean()
    assert losses[-1] < losses[0] and agreement > 0.9 > before


def test_mixture_recipes_floor_both_stds_at_std_min_and_anneal_down_to_it():
    from pyromix.recipes import RECIPES, std_annealing
    from pyromix.runs import prepare_recipe

    run = prepare_recipe("gmvae", "digits", limit=30, std_min=1e-3, std_annealing=False)
    assert run.guide.std_min == run.model.likelihood.std_min == 1e-3
    assert std_annealing(run.model, run.guide, run.args) == []
    run = prepare_recipe("gmvae", "digits", limit=30, epochs=20)
    (schedule,) = std_annealing(run.model, run.guide, run.args)
    schedule(0)
    assert run.guide.std_min == run.model.likelihood.std_min == 1.0
    schedule(19)
    assert (
        run.guide.std_min
        == run.model.likelihood.std_min
        == RECIPES["gmvae"].defaults["std_min"]
        == 1e-4
    )
