"""VIMCO: the multi-sample bound with leave-one-out baselines for non-reparameterised sites."""

from __future__ import annotations

import math

import torch
from pyro.distributions.util import is_identically_zero
from pyro.infer.elbo import ELBO
from pyro.infer.enum import get_importance_trace
from pyro.infer.util import get_dependent_plate_dims, torch_sum
from pyro.util import warn_if_nan

__all__ = ["VIMCO", "vimco_learning_signals"]


def vimco_learning_signals(log_w: torch.Tensor) -> torch.Tensor:
    r"""The per-particle learning signals ``L_hat - L_hat_{-m}`` of VIMCO, in log space.

    With ``L_hat = log (1/M) sum_j w_j``, the baseline ``L_hat_{-m}`` replaces particle m's log
    weight by the mean of the others' (their geometric mean in weight space)::

        L_hat_{-m} = log (1/M) (sum_{j != m} w_j + exp(mean_{j != m} log w_j))

    Each row m is formed from log weights directly and reduced with ``logsumexp``, never by
    subtracting ``w_m`` from the full sum, so one dominant weight cannot cancel the others away:
    log weights of -1e4 and 0 together give finite signals. Memory is O(M^2) per data point.

    Arguments:
        log_w: log importance weights, shape ``(M, ...)`` with particles on dim 0 and ``M >= 2``.

    Returns:
        The learning signals, the shape of ``log_w``.

    References:
        Mnih & Rezende 2016, Variational inference for Monte Carlo objectives (the
        geometric-mean variant of the leave-one-out learning signal).

    Example:
        >>> signals = vimco_learning_signals(torch.tensor([0.0, 0.0, 0.0]))
        >>> signals.abs().max().item()
        0.0
    """
    num_particles = log_w.shape[0] if log_w.dim() else 0
    if num_particles < 2:
        raise ValueError(
            f"log_w: expected a tensor of shape (M, ...) with M >= 2 particles on dim 0, "
            f"got shape {tuple(log_w.shape)}"
        )
    eye = torch.eye(num_particles, dtype=torch.bool, device=log_w.device)
    eye = eye.reshape(eye.shape + (1,) * (log_w.dim() - 1))
    others = log_w.unsqueeze(0).expand((num_particles,) + log_w.shape)  # others[m, j] = log w_j
    # masked_fill, not (sum - log w_m): no cancellation and no -inf - -inf
    geometric = others.masked_fill(eye, 0.0).sum(1) / (num_particles - 1)
    left_out = torch.where(eye, geometric.unsqueeze(1), others)
    log_mean = torch.logsumexp(log_w, 0) - math.log(num_particles)
    return log_mean - (torch.logsumexp(left_out, 1) - math.log(num_particles))


class VIMCO(ELBO):
    r"""The M-sample importance-weighted bound with the VIMCO gradient estimator.

    Per data point, with M particles ``h_m ~ q(h | x)`` drawn in one vectorised pass, the
    objective is the multi-sample bound (Li et al. 2020, eq. 7; Burda et al. 2016)::

        L^M(x) = E[ log (1/M) sum_m w_m ],   w_m = p(x, h_m) / q(h_m | x),

    returned negated and summed over the data points (the loss). As in ``RenyiELBO``, a data
    point is an index of the plates every site shares: log-densities are summed over the other
    (dependent) plate dims, the particles are reduced by ``logsumexp``, and the remaining batch
    dims are summed. Its value equals ``RenyiELBO(alpha=0)`` on the same samples.

    Gradients (Mnih & Rezende 2016): pathwise through ``log w_m`` for reparameterised sites,
    as in the IWAE; for each non-reparameterised guide site the score function of particle m,
    ``grad log q(h_m | x)``, is weighted by the learning signal ``L_hat - L_hat_{-m}``, where
    ``L_hat_{-m}`` is the bound with ``log w_m`` replaced by the mean of the other particles'
    log weights (:func:`vimco_learning_signals`). ``L_hat_{-m}`` does not depend on ``h_m``, so
    this leave-one-out control variate keeps the estimator unbiased and needs no baseline
    network (unlike NVIL). ``RenyiELBO`` instead gives such sites a zero gradient.

    Scale: ``log w_m`` is formed from the *scaled* log-densities ``site["log_prob"]``, that
    is, each site's log-density times its ``scale`` (``poutine.scale``, ``pyro.plate``
    subsampling, :func:`~pyromix.infer.scale_latents`) and masked, exactly the numbers
    ``RenyiELBO`` uses. So ``scale_latents(beta)`` gives ``log w = log p(x | h) + beta
    (log p(h) - log q(h | x))``, and a global scale c on model and guide gives the tempered bound
    ``sum_x logsumexp_m(c log w_m) - log M``, which is *not* c times the unscaled one. To weight
    whole data points (e.g. N / B for a minibatch), multiply the loss instead. Score functions
    are unscaled log q, because the particles are drawn from q itself; the estimator is
    unbiased for the scaled objective.

    ``loss``, ``loss_and_grads`` and ``differentiable_loss`` all come from one core, so
    ``VIMCO()(model, guide)`` is a torch module; ``differentiable_loss`` has the value of
    ``loss`` (the score-function part enters as ``t - t.detach()``) and the VIMCO gradient.

    Arguments:
        num_particles: M >= 2, the particles per data point.
        max_plate_nesting: plates the model nests (1 for a data plate); guessed by running
            model and guide once when left at infinity.
        vectorize_particles: must be True: every particle of a data point is needed at once.
        retain_graph: passed to ``backward`` in :meth:`loss_and_grads`.

    References:
        Mnih & Rezende 2016, Variational inference for Monte Carlo objectives (VIMCO).
        Li et al., NVISA (Li et al. 2020), eq. 7. Burda et al. 2016, Importance weighted autoencoders.

    Example:
        >>> import pyro, pyro.distributions as dist
        >>> def model(x):
        ...     with pyro.plate("data", len(x)):
        ...         y = pyro.sample("y", dist.Categorical(logits=torch.zeros(3)))
        ...         pyro.sample("x", dist.Normal(y.float(), 1.0), obs=x)
        >>> def guide(x):
        ...     logits = pyro.param("phi", torch.zeros(3))
        ...     with pyro.plate("data", len(x)):
        ...         pyro.sample("y", dist.Categorical(logits=logits))
        >>> svi = pyro.infer.SVI(model, guide, pyro.optim.Adam({"lr": 0.1}),
        ...                      VIMCO(num_particles=5, max_plate_nesting=1))
        >>> loss = svi.step(torch.tensor([0.0, 2.0]))
        >>> pyro.param("phi").shape
        torch.Size([3])
    """

    def __init__(
        self,
        num_particles: int = 2,
        max_plate_nesting: float = float("inf"),
        vectorize_particles: bool = True,
        retain_graph: bool | None = None,
    ) -> None:
        if not (isinstance(num_particles, int) and num_particles >= 2):
            raise ValueError(
                f"num_particles: VIMCO's leave-one-out baseline needs an integer >= 2, "
                f"got {num_particles!r}"
            )
        if vectorize_particles is not True:
            raise ValueError(
                "vectorize_particles: VIMCO needs all particles of a data point at once, "
                f"expected True, got {vectorize_particles!r}"
            )
        super().__init__(
            num_particles=num_particles,
            max_plate_nesting=max_plate_nesting,
            vectorize_particles=True,
            retain_graph=retain_graph,
        )

    def _get_trace(self, model, guide, args, kwargs):
        model_trace, guide_trace = get_importance_trace(
            "flat", self.max_plate_nesting, model, guide, args, kwargs
        )
        for trace in (guide_trace, model_trace):
            for name, site in trace.nodes.items():
                if site["type"] == "sample" and site["infer"].get("enumerate"):
                    raise ValueError(
                        f"VIMCO samples every latent site; site {name!r} asks for enumeration "
                        f"(infer={site['infer']!r}). Sample it (drop 'enumerate') or use "
                        "TraceEnum_ELBO."
                    )
        return model_trace, guide_trace

    def _surrogate_elbo(self, model, guide, args, kwargs) -> tuple[torch.Tensor, bool]:
        """The core: a tensor whose value is the bound and whose gradient is VIMCO's.

        Also returns whether model or guide touched a param (as Pyro decides on ``backward``).
        """
        model_trace, guide_trace = next(self._get_traces(model, guide, args, kwargs))
        sum_dims = get_dependent_plate_dims(model_trace.nodes.values())
        log_w, score = 0.0, 0.0
        for site in model_trace.nodes.values():
            if site["type"] == "sample":
                log_w = log_w + torch_sum(site["log_prob"], sum_dims)
        for site in guide_trace.nodes.values():
            if site["type"] == "sample":
                log_w = log_w - torch_sum(site["log_prob"], sum_dims)
                score_function = site["score_parts"].score_function
                if not is_identically_zero(score_function):
                    score = score + torch_sum(score_function, sum_dims)
        trainable = any(
            site["type"] == "param"
            for trace in (model_trace, guide_trace)
            for site in trace.nodes.values()
        )
        if is_identically_zero(log_w):
            return torch.tensor(0.0), trainable
        elbo = (torch.logsumexp(log_w, 0) - math.log(self.num_particles)).sum()
        if is_identically_zero(score):
            return elbo, trainable
        score_term = (vimco_learning_signals(log_w.detach()) * score).sum()
        return elbo + (score_term - score_term.detach()), trainable

    def loss(self, model, guide, *args, **kwargs) -> float:
        """The negated M-sample bound, summed over data points (a float; no graph is built)."""
        with torch.no_grad():
            loss = -self._surrogate_elbo(model, guide, args, kwargs)[0].item()
        warn_if_nan(loss, "loss")
        return loss

    def differentiable_loss(self, model, guide, *args, **kwargs) -> torch.Tensor:
        """The loss as a tensor with the VIMCO gradient; its value equals :meth:`loss`."""
        loss = -self._surrogate_elbo(model, guide, args, kwargs)[0]
        warn_if_nan(loss, "loss")
        return loss

    def loss_and_grads(self, model, guide, *args, **kwargs) -> float:
        """The loss, after ``backward`` of the VIMCO surrogate when there are trainable params."""
        surrogate, trainable = self._surrogate_elbo(model, guide, args, kwargs)
        loss = -surrogate
        if trainable and loss.requires_grad:
            loss.backward(retain_graph=self.retain_graph)
        loss = loss.item()
        warn_if_nan(loss, "loss")
        return loss
