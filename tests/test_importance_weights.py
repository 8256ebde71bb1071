"""Importance weights follow Pyro's rules: masks, obs_mask, scales; global sites are refused."""

import functools
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import Trace_ELBO
from pyro.nn import PyroModule

from pyromix.evaluate import SiteError, eval_mode, log_importance_weights, log_likelihood
from pyromix.infer import scale_latents

N, K = 6, 3
X = torch.linspace(-2.0, 2.0, N).unsqueeze(-1)
PI = torch.tensor([0.2, 0.3, 0.5])
MU = torch.tensor([-1.0, 0.0, 1.5])


def base_model(x, extras=False, label=None):
    """z ~ N(0, 1), x | z ~ N(z, 1) per point; optional masked extras and an obs_mask label."""
    with pyro.plate("data", x.shape[0]):
        z = pyro.sample("z", dist.Normal(0.0, 1.0))
        if extras:
            with poutine.mask(mask=False):
                pyro.sample("extra", dist.Normal(0.0, 1.0))
                pyro.sample("extra_obs", dist.Normal(0.0, 1.0), obs=3 * x[:, 0])
        if label is not None:
            y, mask = label
            pyro.sample("y", dist.Categorical(PI), obs=y, obs_mask=mask)
        pyro.sample("x", dist.Normal(z.unsqueeze(-1), 1.0).to_event(1), obs=x)


def base_guide(x, extras=False, label=None):
    with pyro.plate("data", x.shape[0]):
        pyro.sample("z", dist.Normal(0.3 * x[:, 0], 0.8))
        if extras:
            with poutine.mask(mask=False):
                pyro.sample("extra", dist.Normal(5.0, 0.1))


def weights(model, guide, s=7, **kwargs):
    pyro.set_rng_seed(3)
    return log_importance_weights(model, guide, X, s, **kwargs)


def test_fully_masked_sites_and_all_false_obs_mask_change_nothing():
    plain = weights(base_model, base_guide)
    extras = {"extras": True}
    masked = weights(functools.partial(base_model, **extras), functools.partial(base_guide, **extras))
    label = (torch.zeros(N, dtype=torch.long), torch.zeros(N, dtype=torch.bool))
    hidden = weights(functools.partial(base_model, label=label), base_guide)
    assert torch.allclose(masked, plain, atol=1e-6)
    assert torch.allclose(hidden, plain, atol=1e-6)
    # The draws really are the same: any difference above would be the sites' densities.
    assert plain.std() > 0.1


def mixture(x, y=None, y_mask=None):
    """y ~ Cat(PI), x | y ~ N(MU_y, 1): the label observed where revealed."""
    with pyro.plate("data", x.shape[0]):
        y = pyro.sample("y", dist.Categorical(PI), obs=y, obs_mask=y_mask)
        pyro.sample("x", dist.Normal(MU[y].unsqueeze(-1), 1.0).to_event(1), obs=x)


def joint(x):
    """log p(x, y = k) for every k, shape (N, K), by brute force."""
    return PI.log() + dist.Normal(MU, 1.0).log_prob(x)


def exact_posterior_guide(x, y=None, y_mask=None):
    with pyro.plate("data", x.shape[0]), poutine.mask(mask=~y_mask):
        pyro.sample("y_unobserved", dist.Categorical(logits=joint(x)))


def test_partly_revealed_labels_equal_exact_enumeration():
    y = torch.tensor([2, 0, 1, 0, 0, 2])
    mask = torch.tensor([True, False, True, False, False, True])
    ll = log_likelihood(mixture, exact_posterior_guide, X, 5, y=y, y_mask=mask)
    table = joint(X)
    exact = torch.where(mask, table[torch.arange(N), y], table.logsumexp(-1))
    # q(y | x) is the exact posterior, so every weight equals p(x) (times p(y) where revealed).
    assert torch.allclose(ll.log_px, exact, atol=1e-5)
    assert torch.allclose(ll.elbo, exact, atol=1e-5)


def test_weights_match_pyro_trace_elbo_with_scales_and_masks():
    mask = torch.tensor([True, False, True, True, False, True])

    def model(x, y=None, y_mask=None):
        with pyro.plate("data", x.shape[0]):
            with poutine.scale(scale=0.5):
                z = pyro.sample("z", dist.Normal(0.0, 1.0))
            with poutine.mask(mask=mask):
                pyro.sample("x", dist.Normal(z.unsqueeze(-1), 1.0).to_event(1), obs=x)
            y = pyro.sample("y", dist.Categorical(PI), obs=y, obs_mask=y_mask)

    def guide(x, y=None, y_mask=None):
        with pyro.plate("data", x.shape[0]):
            with poutine.scale(scale=0.5):
                pyro.sample("z", dist.Normal(0.3 * x[:, 0], 0.8))
            with poutine.mask(mask=~y_mask):
                pyro.sample("y_unobserved", dist.Categorical(logits=torch.zeros(K)))

    y = torch.tensor([1, 0, 2, 0, 0, 1])
    pyro.set_rng_seed(5)
    elbo = -Trace_ELBO().loss(model, guide, X, y, y_mask=mask)
    pyro.set_rng_seed(5)
    log_w = log_importance_weights(model, guide, X, 1, y=y, y_mask=mask)
    assert float(log_w.sum()) == pytest.approx(elbo, rel=1e-6)


def test_training_weights_and_subsample_scales_do_not_leak():
    plain = weights(base_model, base_guide)
    warm = weights(scale_latents(base_model, 0.3), scale_latents(base_guide, 0.3))
    assert torch.allclose(warm, plain)

    def subsampled(x):
        with pyro.plate("data", 1000, subsample=x):
            z = pyro.sample("z", dist.Normal(0.0, 1.0))
            pyro.sample("x", dist.Normal(z.unsqueeze(-1), 1.0).to_event(1), obs=x)

    def subsampled_guide(x):
        with pyro.plate("data", 1000, subsample=x):
            pyro.sample("z", dist.Normal(0.3 * x[:, 0], 0.8))

    assert torch.allclose(weights(subsampled, subsampled_guide), plain)


def test_global_factors_and_undeclared_batch_dims_are_refused_by_name():
    def global_model(x):
        pyro.factor("penalty", torch.tensor(-1.0))
        with pyro.plate("data", x.shape[0]):
            pyro.sample("x", dist.Normal(0.0, 1.0).expand([1]).to_event(1), obs=x)

    with pytest.raises(SiteError, match=r"site 'penalty' is an observation or factor outside"):
        log_likelihood(global_model, lambda x: None, X, 4)

    def wide(x):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("x", dist.Normal(torch.zeros(2, 1, 1, 1), 1.0).to_event(1), obs=x)

    with pytest.raises(SiteError, match=r"site 'x' has log-density shape \(2, 4, 6\)"):
        log_likelihood(wide, lambda x: None, X, 4)


def test_nested_plates_are_summed_per_point():
    def model(x):
        with pyro.plate("data", x.shape[0], dim=-2):
            z = pyro.sample("z", dist.Normal(0.0, 1.0))
            with pyro.plate("features", x.shape[1], dim=-1):
                pyro.sample("x", dist.Normal(z, 1.0), obs=x)

    def guide(x):
        with pyro.plate("data", x.shape[0], dim=-2):
            pyro.sample("z", dist.Normal(0.3 * x[:, :1], 0.8))

    nested = weights(model, guide, max_plate_nesting=2)
    assert nested.shape == (7, N)
    assert torch.allclose(nested, weights(base_model, base_guide), atol=1e-6)


class Model(PyroModule):
    def __init__(self) -> None:
        super().__init__()
        self.dropout = torch.nn.Dropout(0.5)

    def forward(self, x, scale=1.0):
        assert not self.training, "evaluation runs in eval mode"
        base_model(x)


def test_plain_callables_modules_and_partials():
    module = Model()

    def ll(model):
        pyro.set_rng_seed(3)
        return log_likelihood(model, base_guide, X, 7).log_px

    assert torch.allclose(ll(functools.partial(module, scale=2.0)), ll(base_model))
    assert torch.allclose(ll(module), ll(base_model))
    assert module.training  # restored
    with eval_mode(functools.partial(module), base_guide, lambda x: x):
        assert not module.training
