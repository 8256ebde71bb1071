"""A user's recipes, written as Pyro programs from pyromix's public parts (the plugin tests load
this file as FILE.py:NAME, copy it into a module or announce it as an entry point).

``student``: z ~ Student-t(3), x | z from the recipe's likelihood, a Gaussian guide, with the
optional ``generate`` and ``latent_mean`` of :mod:`pyromix.protocol`. ``bare``: the same
networks without any optional method.
"""

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule

from pyromix.recipes import Recipe, build_encoder, build_likelihood, elbo_objective


class StudentTVAE(PyroModule):
    """z ~ StudentT(3, 0, 1)^d, x | z ~ p(x | z)."""

    def __init__(self, likelihood, d):
        super().__init__()
        self.likelihood, self.d = likelihood, d

    def prior(self, like):
        return dist.StudentT(3.0, like.new_zeros(self.d), 1.0).to_event(1)

    def forward(self, x, y=None):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", self.prior(x))
            pyro.sample("x", self.likelihood(z), obs=x)

    @torch.no_grad()
    def generate(self, n, *, component=None, weights=None):
        return self.likelihood.mean(self.prior(torch.zeros(1)).sample((n,)))


class Guide(PyroModule):
    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, x, y=None):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", self.encoder(x))

    @torch.no_grad()
    def latent_mean(self, x):
        return self.encoder(x).mean


def build(args):
    d = args["latent_dim"]
    return StudentTVAE(build_likelihood(args, d), d), Guide(build_encoder(args, d))


student = Recipe("VAE with a Student-t prior", build=build, objective=elbo_objective)


class BareModel(PyroModule):
    """z ~ N(0, I), x | z ~ p(x | z); no optional methods."""

    def __init__(self, likelihood, d):
        super().__init__()
        self.decoder, self.d = likelihood, d

    def forward(self, x, y=None):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(x.new_zeros(self.d), 1.0).to_event(1))
            pyro.sample("x", self.decoder(z), obs=x)


class BareGuide(PyroModule):
    def __init__(self, encoder):
        super().__init__()
        self.net = encoder

    def forward(self, x, y=None):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", self.net(x))


def build_bare(args):
    d = args["latent_dim"]
    return BareModel(build_likelihood(args, d), d), BareGuide(build_encoder(args, d))


bare = Recipe("a VAE without optional methods", build=build_bare, objective=elbo_objective)
