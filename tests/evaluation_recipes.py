"""Tiny linear-Gaussian recipes whose held-out scores are known in closed form.

``cvae-lg``: y ~ Cat(1/K), z ~ N(0, I), x | y, z ~ N(z + mu_y, s^2 I), so
p(x | y) = N(mu_y, (1 + s^2) I); the guide is the exact posterior q(z | x, y) and enumerates a
hidden y. ``cvae-input``: the same decoder reading y as an input only (no y site), with a guide
that has no y site either. ``global-lg``: theta ~ N(0, I), x_n | theta ~ N(theta, I), with a
Gaussian guide on theta (a latent outside the data plate).
"""

import math

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import Trace_ELBO, TraceEnum_ELBO
from pyro.nn import PyroModule
from torch import nn

from pyromix.recipes import Recipe

K, NOISE = 3, 0.5


def _labels(x, y, y_mask):
    if y is None:
        n = x.shape[0]
        return x.new_zeros(n, dtype=torch.long), x.new_zeros(n, dtype=torch.bool)
    return y, y_mask


class ConditionalModel(PyroModule):
    def __init__(self, d, prior_on_y=True):
        super().__init__()
        self.mu = nn.Parameter(torch.linspace(-2.0, 2.0, K).unsqueeze(-1).expand(K, d).clone())
        self.d, self.prior_on_y = d, prior_on_y

    def forward(self, x, y=None, y_mask=None):
        y, y_mask = _labels(x, y, y_mask)
        with pyro.plate("data", x.shape[0]):
            if self.prior_on_y:
                prior = dist.Categorical(logits=x.new_zeros(K))
                y = pyro.sample("y", prior, obs=y, obs_mask=y_mask)
            z = pyro.sample("z", dist.Normal(x.new_zeros(self.d), 1.0).to_event(1))
            pyro.sample("x", dist.Normal(z + self.mu[y], NOISE).to_event(1), obs=x)

    def log_px_given_y(self, x, y):
        """log p(x | y), by hand."""
        scale = math.sqrt(1 + NOISE**2)
        return dist.Normal(self.mu[y], scale).to_event(1).log_prob(x)


class ExactGuide(PyroModule):
    """q(z | x, y) = p(z | x, y) = N((x - mu_y) / (1 + s^2), s^2 / (1 + s^2)); y enumerated."""

    def __init__(self, model, enumerate_y=True):
        super().__init__()
        object.__setattr__(self, "model", model)  # read, not registered
        self.enumerate_y = enumerate_y
        self.unused = nn.Parameter(torch.zeros(()))

    def forward(self, x, y=None, y_mask=None):
        y, y_mask = _labels(x, y, y_mask)
        with pyro.plate("data", x.shape[0]):
            if self.enumerate_y:
                with poutine.mask(mask=~y_mask):
                    q_y = dist.Categorical(logits=x.new_zeros(x.shape[0], K))
                    hidden = pyro.sample("y_unobserved", q_y, infer={"enumerate": "parallel"})
                y = torch.where(y_mask, y, hidden)
            shrink = 1.0 / (1.0 + NOISE**2)
            loc = (x - self.model.mu[y]) * shrink + 0.0 * self.unused
            pyro.sample("z", dist.Normal(loc, math.sqrt(NOISE**2 * shrink)).to_event(1))


def build_cvae(args):
    model = ConditionalModel(args["data_dim"])
    return model, ExactGuide(model)


def build_input_only(args):
    model = ConditionalModel(args["data_dim"], prior_on_y=False)
    return model, ExactGuide(model, enumerate_y=False)


class GlobalModel(PyroModule):
    def __init__(self, d):
        super().__init__()
        self.d = d

    def forward(self, x, y=None):
        theta = pyro.sample("theta", dist.Normal(x.new_zeros(self.d), 1.0).to_event(1))
        with pyro.plate("data", x.shape[0]):
            pyro.sample("x", dist.Normal(theta, 1.0).to_event(1), obs=x)


class GlobalGuide(PyroModule):
    def __init__(self, d):
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(d))
        self.raw_scale = nn.Parameter(torch.full((d,), -2.0))

    def forward(self, x, y=None):
        pyro.sample("theta", dist.Normal(self.loc, self.raw_scale.exp()).to_event(1))


def build_global(args):
    return GlobalModel(args["data_dim"]), GlobalGuide(args["data_dim"])


class GlobalFactorModel(GlobalModel):
    def forward(self, x, y=None):
        pyro.factor("penalty", x.new_tensor(-1.0))  # one number for the whole data set
        super().forward(x, y)


def build_global_factor(args):
    return GlobalFactorModel(args["data_dim"]), GlobalGuide(args["data_dim"])


RECIPES = {
    "cvae-lg": Recipe(
        "linear-Gaussian conditional VAE, y enumerated where hidden",
        build=build_cvae,
        objective=lambda args: TraceEnum_ELBO(max_plate_nesting=1),
        defaults={"likelihood": "gaussian"},
    ),
    "cvae-input": Recipe(
        "linear-Gaussian conditional VAE reading y as an input only",
        build=build_input_only,
        objective=lambda args: Trace_ELBO(),
        defaults={"likelihood": "gaussian"},
    ),
    "global-factor": Recipe(
        "a factor outside the data plate: no per-point share",
        build=build_global_factor,
        objective=lambda args: Trace_ELBO(),
        defaults={"likelihood": "gaussian"},
    ),
    "global-lg": Recipe(
        "a shared mean theta, a latent outside the data plate",
        build=build_global,
        objective=lambda args: Trace_ELBO(),
        defaults={"likelihood": "gaussian"},
    ),
}


def labelled_data(n=60, d=2, seed=0):
    """Points near mu_y for y = 0, 1, 2 (float64 -> float32), with their labels."""
    generator = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % K
    x = torch.linspace(-2.0, 2.0, K)[y].unsqueeze(-1) + torch.randn(n, d, generator=generator)
    return x.numpy(), y.numpy()
