"""M2 (Kingma et al. 2014): its loss against the sum written by hand, and the recipe end to end."""

import json
import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import TraceEnum_ELBO

from pyromix.cli import main
from pyromix.labels import Batch
from pyromix.recipes import COMMON_DEFAULTS, RECIPES
from pyromix.recipes.semisupervised import ClassificationTerm
from pyromix.runs import load_run

K, D, LATENT = 3, 2, 1


def tiny():
    args = {
        **COMMON_DEFAULTS,
        **RECIPES["m2"].defaults,
        "hidden": [3],
        "latent_dim": LATENT,
        "clusters": K,
        "data_dim": D,
        "image_shape": None,
        "likelihood": "gaussian",
        "std_min": 0.1,
    }
    torch.manual_seed(0)
    return RECIPES["m2"].build(args)


def elbo_terms(model, guide, x, draws=200_000):
    """L(x, k) = log p(k) + E_q(z|x,k)[log p(z) + log p(x | k, z) - log q(z | x, k)], (N, K),
    by Monte Carlo with many reparameterised draws per point and class."""
    with torch.no_grad():
        ks = torch.arange(K).unsqueeze(-1)  # (K, 1)
        q_z = guide.encoder(guide._with_label(x, ks))  # batch (K, N)
        z = q_z.rsample((draws,))  # (draws, K, N, latent)
        p_z = dist.Normal(torch.zeros(LATENT), 1.0).to_event(1)
        p_x = model.likelihood(model.decoder_input(z, ks.expand(K, len(x))))
        inner = p_z.log_prob(z) + p_x.log_prob(x) - q_z.log_prob(z)
        return (inner.mean(0) + math.log(1 / K)).T


def test_m2_loss_is_labelled_plus_enumerated_unlabelled_plus_alpha_classification():
    model, guide = tiny()
    x = torch.randn(5, D)
    y = torch.tensor([2, 0, 1, 1, 0])
    mask = torch.tensor([True, False, True, False, False])
    n_train, alpha = 50, 0.1  # alpha N / N_l = 0.1 * 50 / 2 per revealed point
    term = ClassificationTerm(alpha * n_train, int(mask.sum()))
    batch = Batch(x, torch.where(mask, y, 0), mask)
    pyro.set_rng_seed(1)
    objective = TraceEnum_ELBO(max_plate_nesting=1, num_particles=50_000, vectorize_particles=True)
    with torch.no_grad():
        loss = objective.loss(model, guide, *batch.call()[0], **batch.call()[1])
        loss += float(term(model, guide, batch))

    table = elbo_terms(model, guide, x)
    log_q = torch.log_softmax(guide.classifier(x), -1).detach()
    labelled = -table[torch.arange(5), y]
    unlabelled = -(log_q.exp() * (table - log_q)).sum(-1)
    classification = -(alpha * n_train / 2) * log_q[torch.arange(5), y][mask].sum()
    by_hand = float(torch.where(mask, labelled, unlabelled).sum() + classification)
    assert loss == pytest.approx(by_hand, abs=0.05)
    # Each part matters: counting the labelled points K times, dropping the classification term
    # or the entropy of q(y | x) would each move the loss by more than the tolerance.
    assert abs(float(labelled[mask].sum()) * (K - 1)) > 1
    assert abs(float(classification)) > 1
    assert abs(float((log_q.exp() * log_q).sum(-1)[~mask].sum())) > 1


def test_m2_classification_term_is_exact_and_zero_without_labels():
    model, guide = tiny()
    x = torch.randn(4, D)
    y, mask = torch.tensor([1, 0, 2, 0]), torch.tensor([True, False, True, False])
    term = ClassificationTerm(30.0, 2)
    log_q = torch.log_softmax(guide.classifier(x), -1)
    expected = -15.0 * (log_q[0, 1] + log_q[2, 2])
    value = float(term(model, guide, Batch(x, y, mask)).detach())
    assert value == pytest.approx(float(expected.detach()), rel=1e-6)
    assert float(term(model, guide, Batch(x))) == 0.0
    with pytest.raises(ValueError, match="num_labeled >= 1"):
        ClassificationTerm(1.0, 0)


def test_m2_recipe_trains_reports_accuracy_and_reloads(tmp_path, capsys):
    out = tmp_path / "m2"
    options = ["--limit", "120", "--epochs", "2", "--hidden", "16", "--samples", "30"]
    assert main(["fit", "m2", "--labeled", "20", "--out", str(out), "--quiet", *options]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["test_accuracy"] <= 1 and metrics["clusters"] == 10
    run = load_run(out)
    assert int(run.dataset.train.labeled.sum()) == 20  # the same labels revealed on reload
    assert not run.dataset.test.labeled.any()
    probs = run.guide.cluster_probs(run.dataset.test.x)
    accuracy = float((probs.argmax(-1) == run.dataset.test.y).float().mean())
    assert metrics["test_accuracy"] == pytest.approx(accuracy, abs=1e-6)
    capsys.readouterr()
    unlabelled = ["--labeled", "0", "--out", str(tmp_path / "u"), "--quiet", *options]
    assert main(["fit", "m2", *unlabelled]) == 0
    assert "test_accuracy" not in json.loads((tmp_path / "u/metrics.json").read_text())
