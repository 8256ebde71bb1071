"""MVAE (seed 000) against exact answers: the closed forms of q(y), eq. 1, soft and hard."""

import json
import math

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyromix.guides import MVAEGuide
from pyromix.guides.mvae import PARTICLE_PLATE, closed_form_log_q_y
from pyromix.models import GaussianMixtureVAE
from torch import nn

from pyromix.cli import main
from pyromix.evaluate import log_importance_weights
from pyromix.infer import scale_latents
from pyromix.likelihoods import GaussianLikelihood
from pyromix.nn import mlp
from pyromix.recipes import get_recipe
from pyromix.runs import evaluate_run, prepare_recipe, train_recipe

K, LATENT, DATA, N = 3, 2, 5, 4
FORMS = ("mvae", "em1", "em2")


def random_terms(L, scale=3.0, generator=None):
    """log p(x|z), log p(y), log p(z|y), log q(z|x,y) for L samples of N points, K clusters."""
    g = torch.Generator().manual_seed(1) if generator is None else generator
    log_px, log_pz, log_qz = (scale * torch.randn(L, N, K, generator=g).double() for _ in range(3))
    log_py = torch.tensor([0.2, 0.5, 0.3]).double().log()
    return log_px, log_py, log_pz, log_qz


def direct_q(form, log_px, log_py, log_pz, log_qz, *, root=True):
    """Eq. 5 / 10 / 15 literally: products of density ratios over l, normalised over k.

    ``root`` takes the L-th root of the product (the maximiser of eq. 1, 6, 11); without it the
    equation as printed. Plain float64 products: fine for moderate values only.
    """
    log_px, log_py, log_pz, log_qz = (t.numpy() for t in (log_px, log_py, log_pz, log_qz))
    ratio = {
        "mvae": np.exp(log_px + log_py + log_pz - log_qz),
        "em1": np.exp(log_py + log_pz) * np.ones_like(log_qz),
        "em2": np.exp(log_py + log_pz - log_qz),
    }[form]
    product = ratio.prod(axis=0)  # (N, K)
    if root:
        product = product ** (1.0 / ratio.shape[0])
    return torch.from_numpy(product / product.sum(-1, keepdims=True))


def eq1(q, log_a, log_q=None):
    """Eq. 1 per point: sum_k q_k ((1/L) sum_l log A_kl - log q_k), with 0 log 0 = 0."""
    log_q = q.log() if log_q is None else log_q
    entropy = torch.where(q > 0, q * log_q, torch.zeros_like(q))
    return (q * log_a.mean(0)).sum(-1) - entropy.sum(-1)


@pytest.mark.parametrize("L", [1, 3])
@pytest.mark.parametrize("form", FORMS)
def test_closed_forms_equal_a_direct_computation_of_eq_5_10_15(form, L):
    terms = random_terms(L)
    log_q = closed_form_log_q_y(form, terms[1], terms[2], terms[3], terms[0], sample_dims=(-3,))
    assert log_q.shape == (1, N, K)
    expected = direct_q(form, *terms)
    assert torch.allclose(log_q[0].exp(), expected, rtol=1e-12, atol=0)
    if L == 1:  # the equations as printed
        assert torch.allclose(log_q[0].exp(), direct_q(form, *terms, root=False), rtol=1e-12)


@pytest.mark.parametrize("form", FORMS)
def test_closed_forms_stay_exact_where_the_products_underflow(form):
    """Log densities near -1e4 (and a product over L = 50 samples): the direct product of eq. 5
    is 0 / 0, the log-space form equals the exact softmax of the offsets."""
    L = 50
    offsets = torch.tensor([0.0, 1.0, -2.0], dtype=torch.float64)
    log_px = torch.full((L, N, K), -1e4, dtype=torch.float64) + offsets
    log_pz = torch.full((L, N, K), -3e3, dtype=torch.float64) + offsets
    log_qz = torch.full((L, N, K), 2e3, dtype=torch.float64) - offsets
    log_py = torch.zeros(K, dtype=torch.float64)
    with np.errstate(invalid="ignore"):
        assert torch.isnan(direct_q(form, log_px, log_py, log_pz, log_qz)).all()
    log_q = closed_form_log_q_y(form, log_py, log_pz, log_qz, log_px, sample_dims=(-3,))
    times = {"mvae": 3.0, "em1": 1.0, "em2": 2.0}[form]  # how many terms carry the offsets
    expected = torch.softmax(times * offsets, -1).expand(1, N, K)
    assert torch.allclose(log_q.exp(), expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("L", [1, 3])
def test_eq5_maximises_eq1_over_the_simplex_on_the_same_samples(L):
    log_px, log_py, log_pz, log_qz = random_terms(L)
    log_a = log_px + log_py + log_pz - log_qz
    log_q = closed_form_log_q_y("mvae", log_py, log_pz, log_qz, log_px, sample_dims=(-3,))[0]
    best = eq1(log_q.exp(), log_a, log_q)
    # at its maximiser eq. 1 equals log sum_k exp((1/L) sum_l log A_kl)
    assert torch.allclose(best, torch.logsumexp(log_a.mean(0), -1), rtol=1e-12)
    others = dist.Dirichlet(torch.ones(K, dtype=torch.float64)).sample((500, N))
    one_hot = torch.eye(K, dtype=torch.float64)[:, None].expand(K, N, K)
    for q in (*others, *one_hot):
        assert (eq1(q, log_a) <= best + 1e-12).all()
    printed = direct_q("mvae", log_px, log_py, log_pz, log_qz, root=False)
    if L == 1:
        assert torch.allclose(eq1(printed, log_a), best, rtol=1e-12)
    else:  # eq. 5 as printed (no L-th root) is not the maximiser for L > 1
        assert (eq1(printed, log_a) < best - 1e-6).all()


def test_detaching_q_y_loses_no_gradient_for_eq5_but_does_for_eq15():
    """The envelope theorem behind the guide's detached q(y): for eq. 5 (the maximiser of eq. 1)
    the total gradient equals the gradient with q(y) held fixed; for eq. 15 it does not."""
    for form, same in (("mvae", True), ("em2", False)):
        terms = [t.clone().requires_grad_() for t in random_terms(2)]
        log_px, log_py, log_pz, log_qz = terms
        log_a = log_px + log_py + log_pz - log_qz
        grads = []
        for detach in (False, True):
            log_q = closed_form_log_q_y(form, log_py, log_pz, log_qz, log_px, sample_dims=(-3,))[0]
            if detach:
                log_q = log_q.detach()
            grads.append(torch.autograd.grad(eq1(log_q.exp(), log_a, log_q).sum(), terms))
        matches = all(torch.allclose(a, b, atol=1e-12) for a, b in zip(*grads))
        assert matches is same, form


def small_pair(form="mvae", hard=False):
    model = GaussianMixtureVAE(
        GaussianLikelihood(mlp(LATENT, [8], DATA), DATA, std_min=0.1), LATENT, K, learn_weights=True
    )
    with torch.no_grad():
        model.logits = torch.tensor([0.2, -0.5, 0.1]).log_softmax(-1)
    guide = MVAEGuide(model, mlp(DATA, [8]), form=form, hard=hard, std_min=0.05)
    nn.init.normal_(guide.loc_offset.weight)  # zero at init; make the clusters differ
    return model, guide, torch.randn(N, DATA)


def direct_terms(model, guide, x, L):
    """The guide's candidates redrawn from the same seed, and eq. 1's log densities (L, N, K)."""
    loc, scale = guide._heads(guide.body(x))
    z = dist.Normal(loc, scale).rsample((L,))  # (L, N, K, d)
    log_qz = dist.Normal(loc, scale).to_event(1).log_prob(z)
    log_px = model.likelihood(z).log_prob(x[:, None])
    log_pz = model.component(torch.arange(K)).log_prob(z)
    log_py = model.cluster_prior().logits
    return [t.double().detach() for t in (log_px, log_py, log_pz, log_qz)]


@pytest.mark.parametrize("beta", [1.0, 0.3])
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("L", [1, 3])
@pytest.mark.parametrize("form", FORMS)
def test_loss_is_eq1_with_the_closed_form_q_y_on_the_guides_samples(form, L, hard, beta):
    """The recipe objective equals -sum_x sum_k q_k ((1/L) sum_l [log p(x|z) + beta (log p(y)
    + log p(z|y) - log q(z|x,y))] - beta log q_k), with q from eq. 5/10/15 (one-hot for hard)."""
    model, guide, x = small_pair(form, hard)
    objective = get_recipe("mvae").objective({"hard": hard, "particles": L})
    torch.manual_seed(0)
    loss = objective.loss(scale_latents(model, beta), scale_latents(guide, beta), x)

    torch.manual_seed(0)
    log_px, log_py, log_pz, log_qz = direct_terms(model, guide, x, L)
    q = direct_q(form, log_px, log_py, log_pz, log_qz)
    if hard:
        q = torch.eye(K, dtype=q.dtype)[q.argmax(-1)]
    regulariser = log_py + log_pz - log_qz
    expected = (q * (log_px + beta * regulariser).mean(0)).sum(-1)
    expected = expected - beta * torch.where(q > 0, q * q.log(), torch.zeros_like(q)).sum(-1)
    assert loss == pytest.approx(-expected.sum().item(), rel=1e-5)


def test_particles_share_one_q_y_and_other_plates_get_their_own():
    _, guide, x = small_pair("em2")
    for name, shared in ((PARTICLE_PLATE, True), ("importance", False)):
        with pyro.plate(name, 5, dim=-2):
            trace = poutine.trace(guide).get_trace(x)
        probs = trace.nodes["y"]["fn"].probs.expand(5, N, K)
        z = trace.nodes["z"]["value"]
        assert z.shape == (5, N, LATENT) and not torch.equal(z[0], z[1])
        assert torch.equal(probs[0], probs[1]) is shared, name
        assert torch.allclose(probs.sum(-1), torch.ones(5, N))


def test_hard_optimisation_samples_the_argmax_of_q_y():
    model, guide, x = small_pair("mvae", hard=True)
    torch.manual_seed(3)
    trace = poutine.trace(guide).get_trace(x)
    torch.manual_seed(3)
    q = direct_q("mvae", *direct_terms(model, guide, x, 1))
    assert torch.equal(trace.nodes["y"]["value"], q.argmax(-1))
    assert torch.equal(trace.nodes["y"]["fn"].probs, torch.eye(K)[q.argmax(-1)])


def test_importance_weights_with_eq5_are_the_stratified_sum_over_clusters():
    """log w = log p(x, y, z) - log q(y) - log q(z | x, y) with q(y) from eq. 5 is
    log sum_k p(x, y_k, z_k) / q(z_k | x, y_k) whichever y was drawn: an unbiased p(x) estimate."""
    model, guide, x = small_pair("mvae")
    torch.manual_seed(5)
    log_w = log_importance_weights(model, guide, x, 6)
    torch.manual_seed(5)
    log_px, log_py, log_pz, log_qz = direct_terms(model, guide, x, 6)
    expected = torch.logsumexp(log_px + log_py + log_pz - log_qz, -1)
    assert torch.allclose(log_w.double(), expected, rtol=1e-5)


def test_bad_arguments_are_refused_before_any_work():
    model, _, _ = small_pair()
    with pytest.raises(ValueError, match="form: expected one of"):
        MVAEGuide(model, mlp(DATA, [8]), form="em3")
    vade = GaussianMixtureVAE(model.likelihood, LATENT, K, marginalize_y=True)
    with pytest.raises(ValueError, match="model: expected a GaussianMixtureVAE with a y site"):
        MVAEGuide(vade, mlp(DATA, [8]))
    with pytest.raises(ValueError, match="log_px: the 'mvae' form"):
        closed_form_log_q_y("mvae", *random_terms(1)[1:])
    with pytest.raises(ValueError, match="beta_schedule: expected one of"):
        prepare_recipe("mvae-em2", beta_schedule="cosine", limit=40)
    with pytest.raises(ValueError, match="hard: expected True or False, got 'yes'"):
        prepare_recipe("mvae", hard="yes", limit=40)


@pytest.mark.parametrize(
    "name, options",
    [
        ("mvae", {"particles": 2}),
        ("mvae-em1", {"hard": True}),
        ("mvae-em2", {"beta": 0.3, "beta_schedule": "linear"}),
    ],
)
def test_recipes_train_on_digits_with_finite_loss_and_valid_q_y(name, options):
    run = train_recipe(
        name, "digits", epochs=3, pretrain_epochs=2, hidden=[32], progress=False, **options
    )
    assert all(math.isfinite(v) for v in run.history.train_loss + run.history.val_loss)
    if options.get("beta_schedule") == "linear":  # scheduled beta: 0, beta/3, 2 beta/3
        assert run.history.kl_weight == pytest.approx([0.0, 0.1, 0.2])
    probs = run.guide.cluster_probs(run.dataset.test.x)
    assert probs.shape == (len(run.dataset.test), 10) and (probs >= 0).all()
    assert torch.allclose(probs.sum(-1), torch.ones(len(run.dataset.test)))
    assert torch.equal(probs, run.guide.cluster_probs(run.dataset.test.x))  # deterministic
    loc, _ = run.guide._heads(run.guide.body(run.dataset.test.x))
    chosen = loc[torch.arange(len(run.dataset.test)), probs.argmax(-1)]
    assert torch.equal(run.guide.latent_mean(run.dataset.test.x), chosen)  # latent of MAP y
    metrics = evaluate_run(run, num_samples=5)
    for key in ("acc", "nmi", "ari", "gmm_acc", "gmm_nmi", "gmm_ari"):
        assert 0 <= metrics[key] <= 1 or key.endswith("ari"), key


def test_cli_fits_hard_scheduled_beta_mvae(tmp_path):
    out = tmp_path / "mvae"
    argv = ["fit", "mvae-em2", "--hard", "--beta", "0.2", "--beta-schedule", "linear"]
    argv += ["--epochs", "2", "--pretrain-epochs", "1", "--hidden", "16", "--limit", "200"]
    assert main([*argv, "--samples", "5", "--quiet", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["clusters"] == 10 and -1 <= metrics["gmm_ari"] <= 1
    saved = torch.load(out / "checkpoint.pt", weights_only=True)["recipe"]["args"]
    assert (saved["hard"], saved["beta"], saved["beta_schedule"]) == (True, 0.2, "linear")
