"""The MVAE guide: q(z | x, y) for every cluster, and q(y) in closed form from those samples."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro.ops.indexing import Vindex
from pyro.poutine.runtime import get_plates
from torch import nn
from torch.nn import functional as F

from pyromix.sites import DATA_PLATE, Y, Z

from .mixture import ClusterEncoder
from pyromix.schema import Interval, Options, check_value

__all__ = ["PARTICLE_PLATE", "Q_Y_FORMS", "MVAEGuide", "closed_form_log_q_y"]

# The closed forms of q(y) (Chowdhury et al.): which log densities enter the product over l.
Q_Y_FORMS = {
    "mvae": "eq. 5: p(x | z) p(y) p(z | y) / q(z | x, y)",
    "em1": "eq. 10: p(y) p(z | y)",
    "em2": "eq. 15: p(y) p(z | y) / q(z | x, y)",
}
# The plate in which Pyro's ELBOs run vectorised particles (``vectorize_particles=True``): its
# particles are eq. 1's samples l = 1..L, which share one q(y). A rename in Pyro fails
# tests/test_mvae.py::test_particles_share_one_q_y.
PARTICLE_PLATE = "num_particles_vectorized"


def closed_form_log_q_y(
    form: str,
    log_py: torch.Tensor,
    log_pz: torch.Tensor,
    log_qz: torch.Tensor,
    log_px: torch.Tensor | None = None,
    *,
    sample_dims: tuple[int, ...] = (),
) -> torch.Tensor:
    r"""``log q(y_k)`` in closed form (Chowdhury et al., eq. 5, 10, 15), computed in log space.

    With ``log A_kl`` the log of the bracket of the chosen equation for sample ``z_k^(l)``::

        mvae (eq. 5):  log p(x | z_k^l) + log p(y_k) + log p(z_k^l | y_k) - log q(z_k^l | x, y_k)
        em1 (eq. 10):  log p(y_k) + log p(z_k^l | y_k)
        em2 (eq. 15):  log p(y_k) + log p(z_k^l | y_k) - log q(z_k^l | x, y_k)

    the result is ``log_softmax_k((1/L) sum_l log A_kl)``: a log-sum-exp over k of a mean over l,
    so no product of L densities is ever formed and log densities of -1e4 are exact.

    The mean, not the sum, over l: the Lagrangian eq. 1 equals ``sum_k q_k ((1/L) sum_l log A_kl
    - log q_k)``, whose maximiser on the simplex is ``q_k ~ (prod_l A_kl)^(1/L)``. Eq. 2 says
    the same, but the step from eq. 3 to eq. 4 treats ``q(y_k)^L`` as ``q(y_k)``, so eq. 5 as
    printed, ``q_k ~ prod_l A_kl``, is the maximiser only for L = 1 (the two agree there); for
    L > 1 it is the maximiser tempered by 1/L, which gives a lower eq. 1. Likewise for eq. 10
    and 15 with their Lagrangians eq. 6 and 11 (eq. 11 is minimised).

    Arguments:
        form: ``"mvae"``, ``"em1"`` or ``"em2"`` (``Q_Y_FORMS``).
        log_py: log p(y_k), shape broadcastable to the others, K on the last dim.
        log_pz: log p(z_k^l | y_k), shape (..., K).
        log_qz: log q(z_k^l | x, y_k), shape (..., K).
        log_px: log p(x | z_k^l), shape (..., K); needed by ``"mvae"`` only.
        sample_dims: the dims (negative, counted with K last) that index l; they are averaged
            and kept with size 1.

    Returns:
        log q(y_k), the broadcast shape with ``sample_dims`` reduced to 1; it sums to 1 over k
        in probability space.

    References:
        Chowdhury et al., Mixtures of posterior and prior VAEs (Chowdhury et al.), eq. 1-15.

    Example:
        >>> log_q = closed_form_log_q_y("em1", torch.log(torch.tensor([0.5, 0.5])),
        ...                             torch.tensor([-1e4, -1e4 + 1.0986123]), torch.zeros(2))
        >>> log_q.exp()
        tensor([0.2500, 0.7500])
    """
    check_value("form", form, Options(*Q_Y_FORMS))
    if form == "mvae" and log_px is None:
        raise ValueError("log_px: the 'mvae' form (eq. 5) needs log p(x | z), got None")
    log_a = log_py + log_pz
    if form != "em1":
        log_a = log_a - log_qz
    if form == "mvae":
        log_a = log_a + log_px
    if sample_dims:
        log_a = log_a.mean(sample_dims, keepdim=True)
    return torch.log_softmax(log_a, -1)


class MVAEGuide(ClusterEncoder):
    r"""The MVAE guide (Chowdhury et al.): K candidate latents per x, q(y) in closed form, then y and z.

    For every x it draws one reparameterised candidate per cluster, ``z_k ~ q(z | x, y_k)``
    (:class:`~pyromix.guides.mixture.ClusterEncoder`'s heads, all K in one pass), computes q(y)
    from them by eq. 5, 10 or 15 (:func:`closed_form_log_q_y`, calling the model's decoder
    and prior, which is why the guide is built with its model), then samples

    - ``"y"``: *soft* optimisation enumerates y in parallel with probabilities q(y), so
      ``TraceEnum_ELBO`` gives ``sum_k q(y_k) [log p(x | z_k) + log p(y_k) + log p(z_k | y_k)
      - log q(z_k | x, y_k) - log q(y_k)]``, eq. 1 with its q(y); *hard* optimisation puts all
      mass on ``argmax_k q(y_k)`` (y is drawn from that one-hot q, so log q(y) = 0);
    - ``"z"``: the candidate already drawn for that y, as a ``Delta`` whose log density is
      ``log q(z_y | x, y)``: objective and q(y) use the same samples, and gradients flow
      pathwise through the candidate and through its density, as for a reparameterised Normal.

    L samples per x: run the objective with ``num_particles=L, vectorize_particles=True``. Those
    particles (the plate ``PARTICLE_PLATE``) are eq. 1's ``l = 1..L``: q(y) is computed from
    all of them and shared, and Pyro averages their terms, so the loss is eq. 1 exactly. Other
    enclosing plates (e.g. the importance samples of :func:`pyromix.evaluate.log_likelihood`)
    get a q(y) each. Importance weights ``p(x, y, z) / (q(y) q(z | x, y))`` stay unbiased for
    p(x) although q(y) depends on the candidates (their mean over y ~ q is ``sum_k p(x, y_k,
    z_k) / q(z_k | x, y_k)``); with ``hard`` they are not, and a test log-likelihood is then
    only a lower bound.

    Gradients and q(y): q(y) enters the objective as a constant (its tensor is computed from
    detached candidates), the E-step of an EM reading of the paper, which derives q(y) as the
    stationary point of eq. 1 (or 6, 11) with the samples held fixed and then optimises the
    networks. For eq. 5 nothing is lost: it maximises eq. 1 over the simplex, so by the envelope
    theorem the gradient through q(y) is zero and the detached gradient is the total one. For
    eq. 10 and 15 q(y) is not eq. 1's maximiser: differentiating through it would also train
    the networks to move q(y) itself, which the paper's alternation (q(y) by its rule, then the
    networks for that q(y)) does not do; argmax (hard) has no gradient at all.

    ``beta`` (``pyromix.infer.scale_latents``, or the recipes' ``beta``) weights the latent
    sites' terms, giving ``sum_k q(y_k) [log p(x | z_k) + beta (log p(y_k) + log p(z_k | y_k)
    - log q(z_k | x, y_k) - log q(y_k))]``: beta-MVAE; its q(y) is still the chosen closed
    form (eq. 15 for beta-MVAE (EM-V2), which ignores the reconstruction and so any beta).

    Arguments:
        model: a :class:`~pyromix.models.GaussianMixtureVAE` with a y site; only read (its
            parameters stay the model's, the guide does not register it). Its ``latent_dim``
            and ``num_clusters`` K size the guide.
        body: network mapping x to features, with an ``out_features`` attribute.
        form: ``"mvae"`` (eq. 5), ``"em1"`` (eq. 10) or ``"em2"`` (eq. 15).
        hard: hard optimisation (argmax q(y)) instead of soft.
        std_min: lower bound on the std of q(z | x, y) (std annealing lowers it).
        readout_samples: candidates per cluster for :meth:`cluster_probs` and
            :meth:`latent_mean`, from a fixed generator, so the readout is deterministic.

    References:
        Chowdhury et al., Mixtures of posterior and prior VAEs (Chowdhury et al.): eq. 1-5 (MVAE), 6-10
        (EM-V1), 11-15 (EM-V2), 4.2 (clustering), 5.7-5.8 and 7 (beta-MVAE).

    Example:
        >>> from pyromix.runs import prepare_recipe
        >>> run = prepare_recipe("mvae-em2", "digits", hidden=[16], limit=40)
        >>> run.guide.cluster_probs(run.dataset.test.x).sum(-1)[:3]
        tensor([1.0000, 1.0000, 1.0000])
    """

    def __init__(
        self,
        model: nn.Module,
        body: nn.Module,
        *,
        form: str = "mvae",
        hard: bool = False,
        std_min: float = 0.0,
        readout_samples: int = 32,
    ) -> None:
        check_value("form", form, Options(*Q_Y_FORMS))
        if not hasattr(model, "num_clusters") or getattr(model, "marginalize_y", True):
            raise ValueError(
                "model: expected a GaussianMixtureVAE with a y site (marginalize_y=False), "
                f"got {type(model).__name__}"
            )
        check_value("readout_samples", readout_samples, Interval(int, 1))
        latent_dim, num_clusters = model.latent_dim, model.num_clusters
        super().__init__(body, latent_dim, num_clusters, std_min=std_min)
        # Not a submodule: the decoder and prior are the model's parameters, saved and optimised
        # with the model; registering them here would store them twice in every checkpoint.
        object.__setattr__(self, "model", model)
        self.form, self.hard, self.readout_samples = form, hard, readout_samples

    def log_q_y(
        self, x: torch.Tensor, z: torch.Tensor, log_qz: torch.Tensor, sample_dims=()
    ) -> torch.Tensor:
        """log q(y) of the guide's form for candidates ``z`` (..., N, K, D) with densities
        ``log_qz`` (..., N, K) under q(z | x, y_k); see :func:`closed_form_log_q_y`."""
        model, k = self.model, self.num_clusters
        clusters = torch.arange(k, device=z.device)
        log_px = None
        if self.form == "mvae":  # one cluster at a time: memory K times smaller for many samples
            log_px = torch.stack(
                [
                    model.likelihood(model.decoder_input(z[..., j, :], clusters[j])).log_prob(x)
                    for j in range(k)
                ],
                -1,
            )
        log_pz = model.component(clusters).log_prob(z)
        log_py = model.cluster_prior().logits
        return closed_form_log_q_y(
            self.form, log_py, log_pz, log_qz, log_px, sample_dims=sample_dims
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        loc, scale = self._heads(self.body(x))  # (N, K, D)
        q_z = dist.Normal(loc, scale).to_event(1)  # batch (N, K)
        with pyro.plate(DATA_PLATE, x.shape[0]):
            lead, sample_dims = _outer_plates()
            z = q_z.rsample(lead)  # (*lead, N, K, D): the candidates z_k^(l)
            log_qz = q_z.log_prob(z)
            with torch.no_grad():  # q(y) is a constant of the objective: see the docstring
                log_q = self.log_q_y(x, z.detach(), log_qz.detach(), sample_dims)
            if self.hard:
                probs = F.one_hot(log_q.argmax(-1), self.num_clusters).to(log_q.dtype)
                y = pyro.sample(Y, dist.Categorical(probs=probs))
            else:
                y = pyro.sample(Y, dist.Categorical(logits=log_q), infer={"enumerate": "parallel"})
            # y may carry enumeration dims on the left of the candidates' batch dims
            chosen = dist.Delta(Vindex(z)[..., y, :], Vindex(log_qz)[..., y], event_dim=1)
            return pyro.sample(Z, chosen)

    @torch.no_grad()
    def _readout(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(y) from ``readout_samples`` candidates per cluster (fixed noise), and the means."""
        loc, scale = self._heads(self.body(x))
        generator = torch.Generator(device=x.device).manual_seed(0)
        noise = torch.randn(
            (self.readout_samples, *loc.shape), generator=generator, device=x.device
        )
        z = loc + scale * noise.to(loc.dtype)
        log_qz = dist.Normal(loc, scale).to_event(1).log_prob(z)
        return self.log_q_y(x, z, log_qz, sample_dims=(-3,)).squeeze(-3).exp(), loc

    def cluster_probs(self, x: torch.Tensor) -> torch.Tensor:
        """q(y) of the guide's closed form, shape (N, K): the "posterior probability" readout
        (Chowdhury et al., 4.2; its argmax is the cluster). Pooled over ``readout_samples`` candidates,
        it approaches ``softmax_k E_q[log A_k]`` as they grow."""
        return self._readout(x)[0]

    def latent_mean(self, x: torch.Tensor) -> torch.Tensor:
        """The mean of q(z | x, y*) at the MAP cluster y* = argmax q(y), shape (N, D): the
        latent that Chowdhury et al., 4.2 clusters with a GMM."""
        probs, loc = self._readout(x)
        return Vindex(loc)[torch.arange(x.shape[0], device=x.device), probs.argmax(-1)]


def _outer_plates() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Sizes of the plates left of the data plate (e.g. particles), as a sample shape for the
    candidates, and the dims of the vectorised-particle plate in a (..., N, K) tensor."""
    plates = get_plates()
    data_dim = next(f.dim for f in plates if f.name == DATA_PLATE)
    frames = [f for f in plates if f.dim is not None and f.dim < data_dim]
    if not frames:
        return (), ()
    lead = [1] * (data_dim - min(f.dim for f in frames))
    for f in frames:
        lead[f.dim - data_dim] = f.size  # the plate next to the data plate is lead[-1]
    # a batch dim d of the sites is dim d - 1 of a tensor with K on the right
    sample_dims = tuple(f.dim - 1 for f in frames if f.name == PARTICLE_PLATE)
    return tuple(lead), sample_dims
