"""Reverse-mode differentiation: walk the graph from the output back to the leaves.

The walk is iterative (an explicit stack, not recursion), so a chain of 10,000 ops works. Gradients of a
tensor used several times are summed. Unless ``retain_graph`` is set, each node's saved arrays are released
as soon as its backward has run, so peak memory falls during the backward pass.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .tensor import Tensor


def topological_order(root: Tensor) -> list[Tensor]:
    """Every tensor that ``root`` depends on and that needs a gradient, ``root`` first, each after all its users."""
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        if node._ctx is not None:
            for parent in node._ctx.inputs:
                if getattr(parent, "requires_grad", False) and id(parent) not in visited:
                    stack.append((parent, False))
    order.reverse()
    return order


def run_backward(root: Tensor, grad: Any, retain_graph: bool) -> None:
    """Propagate ``grad`` (dL/droot) to every leaf that requires a gradient, accumulating into ``leaf.grad``."""
    from .tensor import Tensor

    pending: dict[int, Any] = {id(root): grad}
    for node in topological_order(root):
        node_grad = pending.pop(id(node), None)
        if node_grad is None:
            continue
        if node._ctx is None or node._retains_grad:
            node.grad = node_grad if node.grad is None else node.grad + node_grad
        ctx = node._ctx
        if ctx is None:
            continue
        if ctx.freed:
            ctx.saved  # raises GraphFreedError with an explanation
        input_grads = ctx.function.backward(ctx, node_grad)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        if len(input_grads) != len(ctx.inputs):
            raise RuntimeError(
                f"{ctx.function.__name__}.backward returned {len(input_grads)} gradients for "
                f"{len(ctx.inputs)} inputs"
            )
        for parent, parent_grad in zip(ctx.inputs, input_grads):
            if not (isinstance(parent, Tensor) and parent.requires_grad) or parent_grad is None:
                continue
            if parent_grad.shape != parent.shape:
                raise RuntimeError(
                    f"{ctx.function.__name__}.backward returned a gradient of shape {parent_grad.shape} "
                    f"for an input of shape {parent.shape}"
                )
            key = id(parent)
            # A new array, never +=: backward may hand the same array to several inputs.
            pending[key] = parent_grad if key not in pending else pending[key] + parent_grad
        if not retain_graph:
            ctx.release()  # the node keeps its (now freed) context, so a second backward explains itself
