"""CP-VAE's warm start: q(c | x) fitted to the autoencoder's GMM, p(z | c) to the codes' moments."""

import numpy as np
import pytest
import torch

from pyromix.recipes import get_recipe
from pyromix.recipes.cpvae_warm_start import match_prior_moments, warm_start_cpvae
from pyromix.runs import prepare_recipe

K = 3


def separated_run(**overrides):
    """A CP-VAE run on three well-separated clusters of 8-d points in [0, 1]."""
    rng = np.random.default_rng(0)
    centres = np.array([[0.1] * 4 + [0.9] * 4, [0.9] * 4 + [0.1] * 4, [0.9, 0.1] * 4])
    labels = np.repeat(np.arange(K), 70)
    x = np.clip(centres[labels] + 0.05 * rng.standard_normal((labels.size, 8)), 0, 1)
    options = dict(clusters=K, latent_dim=2, hidden=[16], pretrain_epochs=40, lr=1e-2, seed=0)
    return prepare_recipe("cpvae", x.astype(np.float32), labels=labels, **{**options, **overrides})


def agreement(run, targets):
    """Share of training points whose argmax q(c | x) is the GMM's component (no relabelling)."""
    chosen = run.guide.cluster_probs(run.dataset.train.x).argmax(-1)
    return (chosen == targets.argmax(-1)).float().mean().item()


def test_warm_start_makes_q_c_agree_with_the_gmm_and_untrained_q_c_does_not():
    run = separated_run()
    untrained = separated_run()
    targets = warm_start_cpvae(run.model, run.guide, run.dataset, run.args)
    assert targets.shape == (len(run.dataset.train), K)
    assert agreement(run, targets) > 0.9
    assert agreement(untrained, targets) < 0.6  # chance is 1/3 here


def test_warm_start_sets_the_prior_to_the_moments_of_the_codes_under_q_c():
    run = separated_run()
    warm_start_cpvae(run.model, run.guide, run.dataset, run.args)
    x = run.dataset.train.x
    probs = run.guide.cluster_probs(x)
    codes = run.guide.latent_mean(x).double().numpy()
    w = probs.double().numpy()
    mean = w.T @ codes / w.sum(0)[:, None]
    var = np.stack([w[:, k] @ (codes - mean[k]) ** 2 / w[:, k].sum() for k in range(K)])
    assert np.allclose(run.model.loc.detach().numpy(), mean, atol=1e-4)
    assert np.allclose(run.model.scale.detach().numpy(), np.sqrt(var), rtol=1e-3, atol=1e-4)


def test_match_prior_moments_is_the_weighted_mean_and_std():
    run = separated_run()
    codes = torch.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, -1.0], [1.0, 1.0]])
    weights = torch.tensor([[1.0, 0, 0], [1, 0, 0], [0, 0.5, 0.5], [0, 0.5, 0.5]])
    match_prior_moments(run.model, codes, weights)
    assert torch.allclose(run.model.loc, torch.tensor([[1.0, 2], [2.5, 0], [2.5, 0]]))
    assert torch.allclose(run.model.scale, torch.tensor([[1.0, 1], [1.5, 1], [1.5, 1]]), atol=1e-5)
    with pytest.raises(ValueError, match="weights: expected shape"):
        match_prior_moments(run.model, codes, weights[:, :2])


def test_warm_start_is_the_default_and_off_leaves_the_networks_alone():
    recipe = get_recipe("cpvae")
    assert recipe.defaults["warm_start"] is True and recipe.initialize is warm_start_cpvae
    run = separated_run(warm_start=False)
    before = {k: v.clone() for k, v in run.guide.state_dict().items()}
    loc = run.model.loc.detach().clone()
    assert warm_start_cpvae(run.model, run.guide, run.dataset, run.args) is None
    assert all(torch.equal(before[k], v) for k, v in run.guide.state_dict().items())
    assert torch.equal(run.model.loc, loc)


def test_warm_start_must_be_true_or_false_before_any_work():
    with pytest.raises(ValueError, match="warm_start: expected True or False, got 'yes'"):
        separated_run(warm_start="yes")
