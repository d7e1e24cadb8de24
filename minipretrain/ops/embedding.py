"""Embedding lookup: rows of a weight matrix picked by integer ids."""
from __future__ import annotations

from typing import Any

from ..autograd.function import Context, Function, constant
from ..backend import array_module, scatter_add


class Embedding(Function):
    """y = W[ids]:  W (V, D), ids (...) integers, y (..., D).

    dL/dW[v] = Σ over positions p with ids[p] = v of dL/dy[p]  — a scatter-add, since one id can appear many
    times in a batch. No gradient flows to the ids.
    """

    @staticmethod
    def forward(ctx: Context, weight: Any, ids: Any) -> Any:
        ctx.save_for_backward(ids)
        ctx.weight_shape = weight.shape
        ctx.dtype = weight.dtype
        return weight[ids]

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any, None]:
        (ids,) = ctx.saved
        vocab, dim = ctx.weight_shape
        grad_weight = array_module(grad).zeros((vocab, dim), dtype=ctx.dtype)
        scatter_add(grad_weight, ids.reshape(-1), grad.reshape(-1, dim))
        return grad_weight, None


def embedding(weight: Any, ids: Any) -> Any:
    """Look up the rows of ``weight`` (V, D) named by the integer ``ids``; out-of-range ids are an error."""
    ids = constant(ids, like=weight)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"embedding: ids must be integers, got dtype {ids.dtype}")
    vocab = weight.shape[0]
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= vocab):
        raise IndexError(
            f"embedding: ids must lie in [0, {vocab}), found values from {int(ids.min())} to {int(ids.max())}"
        )
    return Embedding.apply(weight, ids)
