"""What a run's log p(x) is the log of: its *footing*, from its recipe arguments.

Only runs on one footing compare (:mod:`pyromix.compare`), and every score a run reports states
its footing (:mod:`pyromix.runs`): a probability of binary data, of data on L levels, or a
density of continuous data.
"""

from __future__ import annotations

from typing import Any

from .likelihoods import LEVEL_LIKELIHOODS

__all__ = ["footing"]


def footing(args: dict[str, Any]) -> str:
    """What a run's log p(x) is the log of, from its recipe arguments.

    A Bernoulli decoder gives the probability of binary data, as does a flow on binarised data
    (2 levels, uniform dequantisation: ``P(k) = E_u p(k + u)``), so those rank together; a flow
    or a discretised-logistic decoder on digits' 17 grey levels gives the probability of
    17-level data, a different event, and a Gaussian decoder (or a flow on continuous data) a
    density. Only runs on one footing compare.

    Example:
        >>> footing({"likelihood": "bernoulli"}) == footing({"likelihood": "flow", "levels": 2})
        True
        >>> footing({"likelihood": "flow", "levels": 17})
        'probability of 17-level data'
    """
    if args.get("likelihood") == "none":
        return "no likelihood"
    if args.get("likelihood") == "bernoulli":
        return "probability of 2-level data"
    if args.get("likelihood") in ("flow", *LEVEL_LIKELIHOODS) and args.get("levels"):
        return f"probability of {args['levels']}-level data"
    return "density"
