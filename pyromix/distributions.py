"""Distributions of CP-VAE's Gumbel-softmax estimator, with the KLs of Lavda et al. (2020), eq. 8-9.

CP-VAE (Lavda et al. 2020, 3.3) trains on the bound of eq. 7 with the reconstruction term estimated by a
Gumbel-softmax relaxation of the category c, and both KL terms in closed form:
``B1 = KL(q(c | x) || p(c))`` (eq. 9) and ``B2 = E_{q(c | x)} KL(q(z | x, c) || p(z | c))``
(eq. 8). The three classes below let Pyro's ``TraceMeanField_ELBO`` compute exactly that: the
guide's relaxed c carries the categorical it relaxes, the guide's z carries q(c | x), and the two
registered KLs return B1 and B2, so the relaxed sample only reaches the decoder.

References:
    Lavda, Gregorova & Kalousis, CP-VAE (Lavda et al. 2020), eq. 7-9 and 11.
    Jang, Gu & Poole (2017), Categorical reparameterization with Gumbel-softmax.
"""

from __future__ import annotations

import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from torch.distributions import kl_divergence, register_kl

__all__ = ["GumbelSoftmax", "CategoryConditionalNormal", "GatedNormal"]


class GumbelSoftmax(dist.RelaxedOneHotCategorical):
    """The Gumbel-softmax relaxation of ``Cat(probs)``: reparameterised points of the simplex.

    It stands in for the one-hot categorical it relaxes: its KL to a ``OneHotCategorical`` is the
    KL between the two categoricals (Lavda et al. 2020, eq. 9), so under ``TraceMeanField_ELBO`` the
    relaxation changes the gradient of the reconstruction term only.

    Arguments:
        temperature: relaxation temperature tau > 0 (one-hot as tau -> 0).
        logits: unnormalised log probabilities, shape (..., K).
    """

    def __init__(self, temperature: torch.Tensor | float, logits: torch.Tensor) -> None:
        temperature = torch.as_tensor(temperature, dtype=logits.dtype, device=logits.device)
        super().__init__(temperature, logits=logits)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(GumbelSoftmax, _instance)
        return super().expand(batch_shape, _instance=new)

    def rsample(self, sample_shape: tuple[int, ...] = ()) -> torch.Tensor:
        """A relaxed one-hot draw with no entry exactly 0.

        With confident logits and a low temperature an entry underflows to 0, and its log
        density would be NaN; Pyro computes it (and warns) even when the ELBO uses the KL. The
        entries are raised to the smallest normal float, which keeps the sum 1 to within
        K * 1e-38 (a clamp to the float epsilon broke the simplex check at K = 150).
        """
        value = super().rsample(torch.Size(sample_shape))
        return value.clamp(min=torch.finfo(value.dtype).tiny)


@register_kl(GumbelSoftmax, dist.OneHotCategorical)
def _kl_relaxed_categorical(q: GumbelSoftmax, p: dist.OneHotCategorical) -> torch.Tensor:
    return kl_divergence(dist.Categorical(logits=q.logits), dist.Categorical(logits=p.logits))


class CategoryConditionalNormal(dist.TorchDistribution):
    r"""``p(z | c) = prod_i N(z_i; mu_ic, sigma_ic^2)`` for a one-hot category c (Lavda et al. 2020, eq. 5).

    ``log p(z | c) = sum_k c_k log N(z; mu_k, sigma_k)``: exact for one-hot c (sampled or
    enumerated), and defined for relaxed c as the same weighted sum.

    Arguments:
        loc, scale: the K Gaussians, shape (K, D).
        category: one-hot (or relaxed) c, shape (..., K); the batch shape is ``category``'s.
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor, category: torch.Tensor) -> None:
        if loc.dim() != 2 or loc.shape != scale.shape or category.shape[-1] != loc.shape[0]:
            raise ValueError(
                "expected loc and scale of shape (K, D) and category (..., K), got "
                f"{tuple(loc.shape)}, {tuple(scale.shape)}, {tuple(category.shape)}"
            )
        self.loc, self.scale, self.category = loc, scale, category
        super().__init__(category.shape[:-1], loc.shape[-1:], validate_args=False)

    def components(self) -> dist.Independent:
        """The K Gaussians p(z | c = k), batch shape (K,)."""
        return dist.Normal(self.loc, self.scale).to_event(1)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return (self.category * self.components().log_prob(value.unsqueeze(-2))).sum(-1)

    def rsample(self, sample_shape=()) -> torch.Tensor:
        """Draws for one-hot c (the mean and std of category c)."""
        loc, scale = self.category @ self.loc, self.category @ self.scale
        return dist.Normal(loc, scale).rsample(sample_shape)

    def expand(self, batch_shape, _instance=None):
        category = self.category.expand(*batch_shape, self.category.shape[-1])
        return CategoryConditionalNormal(self.loc, self.scale, category)


class GatedNormal(dist.TorchDistribution):
    r"""CP-VAE's ``q(z | x, c) = N(mu(x, pi), diag sigma^2(x, pi))`` with ``pi = q(c | x)`` kept.

    The gated encoder computes mu and sigma from the features and ``pi`` (Lavda et al. 2020, 3.2, Fig. 2),
    so the density is the same Gaussian for every c; carrying ``pi`` lets the KL to
    :class:`CategoryConditionalNormal` be the q(c | x)-weighted average of eq. 8 (term B2).

    Arguments:
        loc, scale: shape (..., D).
        category_probs: q(c | x), shape (..., K).
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real_vector
    has_rsample = True

    def __init__(
        self, loc: torch.Tensor, scale: torch.Tensor, category_probs: torch.Tensor
    ) -> None:
        self.loc, self.scale, self.category_probs = loc, scale, category_probs
        batch_shape = torch.broadcast_shapes(loc.shape[:-1], category_probs.shape[:-1])
        super().__init__(batch_shape, loc.shape[-1:], validate_args=False)

    def base(self) -> dist.Independent:
        return dist.Normal(self.loc, self.scale).to_event(1)

    @property
    def mean(self) -> torch.Tensor:
        return self.loc

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return self.base().log_prob(value)

    def rsample(self, sample_shape=()) -> torch.Tensor:
        return self.base().rsample(sample_shape)

    def entropy(self) -> torch.Tensor:
        return self.base().entropy()

    def expand(self, batch_shape, _instance=None):
        probs = self.category_probs
        return GatedNormal(
            self.loc.expand(*batch_shape, self.loc.shape[-1]),
            self.scale.expand(*batch_shape, self.scale.shape[-1]),
            probs.expand(*batch_shape, probs.shape[-1]),
        )


@register_kl(GatedNormal, CategoryConditionalNormal)
def _kl_gated_conditional(q: GatedNormal, p: CategoryConditionalNormal) -> torch.Tensor:
    # B2 of eq. 8: the expectation over q(c | x) of the closed-form Gaussian KLs; the value of c
    # in p (a relaxed sample during training) does not enter, as in the paper's bound.
    per_category = kl_divergence(
        dist.Normal(q.loc.unsqueeze(-2), q.scale.unsqueeze(-2)), dist.Normal(p.loc, p.scale)
    ).sum(-1)
    return (q.category_probs * per_category).sum(-1)
