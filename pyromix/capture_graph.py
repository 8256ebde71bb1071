"""Edits of a recorded step's graph that change none of its numbers (:mod:`pyromix.capture`)."""

from __future__ import annotations

from typing import Any

import torch

from . import private_apis

__all__ = ["drop_no_ops", "is_impure"]


def is_impure(node: torch.fx.Node) -> bool:
    # Random operations stay even when their result is unused: dropping one would shift every
    # later draw away from the eager step's.
    return private_apis.is_random(node) or node.is_impure()


def _shape(node: Any) -> Any:
    value = node.meta.get("val") if isinstance(node, torch.fx.Node) else None
    return (tuple(value.shape), value.dtype) if isinstance(value, torch.Tensor) else None


def drop_no_ops(graph: torch.fx.Graph) -> None:
    """Remove operations that return their input unchanged: ``detach`` (the replay records no
    gradients), a view or expand to the same shape, ``t(t(x))``, and multiplying or dividing by
    one. Each is exact, and on small networks each costs as much as a real operation. A node
    the graph returns is kept, so no two outputs become one tensor."""
    aten = torch.ops.aten
    same_shape = {aten.view.default, aten.expand.default, aten._unsafe_view.default}
    for node in list(graph.nodes):
        if node.op != "call_function" or any(user.op == "output" for user in node.users):
            continue
        target, args = node.target, node.args
        source = None
        if target is aten.detach.default:
            source = args[0]
        elif target in same_shape and _shape(args[0]) == _shape(node) is not None:
            source = args[0]
        elif target is aten.t.default and getattr(args[0], "target", None) is aten.t.default:
            source = args[0].args[0]
        elif (
            target in (aten.mul.Tensor, aten.div.Tensor)
            and type(args[1]) in (int, float)
            and args[1] == 1
            and _shape(args[0]) == _shape(node) is not None
        ):
            source = args[0]
        if source is not None:
            node.replace_all_uses_with(source)
            graph.erase_node(node)
