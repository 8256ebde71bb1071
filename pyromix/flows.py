"""Normalising-flow building blocks: stacks of Pyro's invertible transforms, and dequantisation.

pyromix builds its flows from ``pyro.distributions.transforms`` rather than zuko: the transforms
are ``nn.Module`` s that ``pyro.sample`` and ``TransformedDistribution`` take as they are, their
caches give the log-determinant of a draw without an inverse pass (what an IAF posterior
needs), and conditional versions (``ConditionalAffineAutoregressive``) cover the IAF guide, so
no second dependency with its own distribution classes is needed.

A transform maps base space to data space (Pyro's convention): sampling applies the stack
forwards, which is the inverse pass of the normalising map ``f = T^-1`` from data to N(0, I);
``log_prob`` applies the inverse and adds ``log |det J|`` (Soons 2020, 3.1-3.3).

References:
    Dinh, Sohl-Dickstein & Bengio (2017), Density estimation using Real NVP: affine coupling
    layers with alternating masks (eq. 6-9), the logit pre-processing (4.1) and uniform
    dequantisation of integer levels.
    Durkan et al. (2019), Neural spline flows (rational-quadratic splines).
    Kingma et al. (2016), Improved variational inference with inverse autoregressive flow.
    Theis, van den Oord & Bethge (2016): uniform dequantisation lower-bounds the discrete
    log-likelihood.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyro.distributions.transforms as T
import torch
from pyro.distributions.torch_transform import TransformModule
from torch import nn
from torch.distributions import constraints
from .schema import Interval, check_value

__all__ = [
    "FLOW_KINDS",
    "Reverse",
    "flow_stack",
    "iaf_stack",
    "dequantization_transforms",
    "infer_levels",
]

FLOW_KINDS = ("coupling", "spline")
MAX_LEVELS = 256


class Reverse(TransformModule):
    """Reverses the last dimension: between couplings, the half that was kept is transformed
    next (the alternating masks of Real NVP). Volume preserving; a module so that it moves
    with the flow and has no device of its own."""

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True
    volume_preserving = True

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(-1)

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y.flip(-1)

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape[:-1])


def flow_stack(
    dim: int, layers: int, hidden: Sequence[int], kind: str = "coupling", bins: int = 8
) -> nn.ModuleList:
    """``layers`` invertible layers on R^dim, base to data.

    Arguments:
        dim: event size.
        layers: K >= 1.
        hidden: widths of each layer's conditioner network.
        kind: ``"coupling"``: Real NVP affine couplings (dim >= 2), the halves swapped between
            layers; ``"spline"``: rational-quadratic spline couplings, or for dim = 1 element-wise
            splines on [-4, 4] (identity outside).
        bins: spline segments.

    Returns:
        ``nn.ModuleList`` of transforms, applied in order from the base.

    Example:
        >>> stack = flow_stack(4, 2, [8])
        >>> [type(t).__name__ for t in stack]
        ['AffineCoupling', 'Reverse', 'AffineCoupling']
    """
    if kind not in FLOW_KINDS:
        raise ValueError(f"flow kind: expected one of {FLOW_KINDS}, got {kind!r}")
    check_value("flows", layers, Interval(int, 1))
    if kind == "coupling" and dim < 2:
        raise ValueError(
            f"flow kind: affine couplings need dim >= 2 (got {dim}); use kind 'spline' in 1-D"
        )
    transforms: list[nn.Module] = []
    for k in range(layers):
        if k:
            transforms.append(Reverse())
        if dim == 1:
            transforms.append(T.Spline(1, count_bins=bins, bound=4.0))
        elif kind == "coupling":
            transforms.append(T.affine_coupling(dim, hidden_dims=list(hidden)))
        else:
            transforms.append(
                T.spline_coupling(dim, hidden_dims=list(hidden), count_bins=bins, bound=4.0)
            )
    return nn.ModuleList(transforms)


def iaf_stack(dim: int, context_dim: int, layers: int, hidden: Sequence[int]) -> nn.ModuleList:
    """K conditional inverse autoregressive flows ``z_k = mu_k(z_<, h) + sigma_k(z_<, h) z`` with
    context ``h`` (Kingma et al. 2016, eq. 10-11); each draws its own variable order.

    Returns:
        ``nn.ModuleList`` of ``ConditionalAffineAutoregressive``; ``t.condition(h)`` gives the
        transform for context ``h``.
    """
    check_value("flows", layers, Interval(int, 1))
    return nn.ModuleList(
        T.conditional_affine_autoregressive(dim, context_dim, hidden_dims=list(hidden))
        for _ in range(layers)
    )


def dequantization_transforms(levels: int, alpha: float = 0.05) -> list:
    r"""R -> (0, levels): ``v = levels (sigmoid(y) - alpha) / (1 - 2 alpha)``, element-wise.

    The last steps of a flow for dequantised data ``v = k + u`` with integer levels
    ``k in {0, ..., levels - 1}`` and ``u ~ U(0, 1)``: the inverse of Real NVP's logit
    pre-processing (4.1), so the flow's density is a density of ``v`` itself and
    ``log P(k) >= E_u log p(k + u)`` (each level's cell has unit volume).
    """
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha: expected a number in (0, 0.5), got {alpha}")
    scale = levels / (1 - 2 * alpha)
    return [T.SigmoidTransform(), T.AffineTransform(-alpha * scale, scale, event_dim=1)]


def infer_levels(x: torch.Tensor, *, tolerance: float = 1e-4) -> int | None:
    """The number L of evenly spaced levels ``k / (L - 1)`` that data in [0, 1] sit on, or None.

    Digits are 17 levels (pixels / 16), binary data 2; data off any such grid (up to
    ``MAX_LEVELS``) or outside [0, 1] are continuous (None).

    Example:
        >>> infer_levels(torch.tensor([0.0, 0.25, 1.0])), infer_levels(torch.tensor([0.3, 0.31415926]))
        (5, None)
    """
    if x.numel() == 0 or x.min() < 0 or x.max() > 1:
        return None
    for steps in range(1, MAX_LEVELS):
        scaled = x * steps
        if (scaled - scaled.round()).abs().max() < tolerance:
            return steps + 1
    return None
