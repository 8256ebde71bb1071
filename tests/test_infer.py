"""KL weighting of latent sites and the schedules, checked against direct computations."""

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import Trace_ELBO, TraceMeanField_ELBO

from pyromix.infer import KLWarmup, LatentScaleMessenger, constant, scale_latents, weight_at
from pyromix.recipes import COMMON_DEFAULTS, RECIPES


def small_vae():
    args = {**COMMON_DEFAULTS, "hidden": [8], "latent_dim": 3, "data_dim": 6, "image_shape": None}
    model, guide = RECIPES["vae"].build(args)
    x = torch.bernoulli(torch.full((5, 6), 0.4))
    return model, guide, x


@pytest.mark.parametrize("weight", [0.0, 0.3, 1.0, 2.5])
def test_scaled_monte_carlo_elbo_weights_only_the_kl_term(weight):
    model, guide, x = small_vae()
    torch.manual_seed(1)
    loss = Trace_ELBO().loss(scale_latents(model, weight), scale_latents(guide, weight), x)
    torch.manual_seed(1)
    guide_trace = poutine.trace(guide).get_trace(x)
    model_trace = poutine.trace(poutine.replay(model, guide_trace)).get_trace(x)
    log_lik = model_trace.nodes["x"]["fn"].log_prob(x).sum()
    z = guide_trace.nodes["z"]["value"]
    log_ratio = (
        model_trace.nodes["z"]["fn"].log_prob(z) - guide_trace.nodes["z"]["fn"].log_prob(z)
    ).sum()
    assert loss == pytest.approx(-(log_lik + weight * log_ratio).item(), rel=1e-5)


def test_scaled_analytic_elbo_weights_the_closed_form_kl():
    model, guide, x = small_vae()
    weight = 0.25
    torch.manual_seed(2)
    loss = TraceMeanField_ELBO().loss(scale_latents(model, weight), scale_latents(guide, weight), x)
    torch.manual_seed(2)
    q = guide.encoder(x)
    z = q.rsample()
    log_lik = model.likelihood(z).log_prob(x).sum()
    kl = torch.distributions.kl_divergence(q, model.prior().expand([5])).sum()
    assert loss == pytest.approx(-(log_lik - weight * kl).item(), rel=1e-5)


def test_observed_sites_keep_their_scale_and_other_scales_compose():
    def program():
        with pyro.plate("data", 2, subsample_size=1):  # subsampling scales sites by 2
            pyro.sample("z", dist.Normal(0.0, 1.0))
            pyro.sample("x", dist.Normal(0.0, 1.0), obs=torch.zeros(1))

    trace = poutine.trace(scale_latents(program, 0.5)).get_trace()
    assert trace.nodes["z"]["scale"] == pytest.approx(1.0)
    assert trace.nodes["x"]["scale"] == pytest.approx(2.0)


def test_latent_scale_rejects_negative_weights():
    with pytest.raises(ValueError, match="non-negative"):
        LatentScaleMessenger(-1.0)
    messenger = LatentScaleMessenger(1.0)
    with pytest.raises(ValueError, match="non-negative"):
        messenger.weight = float("nan")


def test_kl_warmup_rises_linearly_from_zero_to_beta():
    warmup = KLWarmup(10)
    assert [warmup(e) for e in (0, 5, 10, 50)] == [0.0, 0.5, 1.0, 1.0]
    assert KLWarmup(4, beta=0.5)(2) == pytest.approx(0.25)
    assert KLWarmup(0, beta=0.3)(0) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="warm-up epochs"):
        KLWarmup(-1)


def test_weight_at_accepts_numbers_and_schedules():
    assert weight_at(0.7, 3) == 0.7
    assert weight_at(constant(0.2), 99) == 0.2
    assert weight_at(KLWarmup(4), 1) == 0.25
