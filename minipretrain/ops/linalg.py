"""Matrix multiplication, batched and broadcasting over leading axes."""
from __future__ import annotations

from typing import Any

from ..autograd.function import Context, Function
from ._broadcast import unbroadcast


class MatMul(Function):
    """C = A @ B with A (..., n, k), B (..., k, m), C (..., n, m); leading axes broadcast.

    dL/dA = dL/dC @ Bᵀ,   dL/dB = Aᵀ @ dL/dC   (then summed over broadcast leading axes).

    The common case in a transformer, activations (..., n, k) times a weight matrix (k, m), is done as one
    2-D product (rows of every batch stacked): NumPy would otherwise loop over the batch, one small product at
    a time, and dL/dB would need a batched product followed by a sum.
    """

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        if a.ndim < 2 or b.ndim < 2:
            raise ValueError("matmul needs inputs with at least 2 dimensions; reshape vectors to (1, n) or (n, 1)")
        if a.shape[-1] != b.shape[-2]:
            raise ValueError(f"inner dimensions differ: {a.shape[-1]} (last of A) vs {b.shape[-2]} (second-last of B)")
        ctx.save_for_backward(a, b)
        if b.ndim == 2 and a.ndim > 2:
            return (a.reshape(-1, a.shape[-1]) @ b).reshape(a.shape[:-1] + (b.shape[-1],))
        return a @ b

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any, Any]:
        a, b = ctx.saved
        # >>> exercise: matmul-backward
        if b.ndim == 2 and a.ndim > 2:
            grad_rows = grad.reshape(-1, grad.shape[-1])
            grad_a = (grad_rows @ b.T).reshape(a.shape) if ctx.needs_input_grad[0] else None
            grad_b = a.reshape(-1, a.shape[-1]).T @ grad_rows if ctx.needs_input_grad[1] else None
            return grad_a, grad_b
        grad_a = unbroadcast(grad @ b.swapaxes(-1, -2), a.shape) if ctx.needs_input_grad[0] else None
        grad_b = unbroadcast(a.swapaxes(-1, -2) @ grad, b.shape) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b
        # <<< exercise


def matmul(a: Any, b: Any) -> Any:
    """a @ b for tensors of 2 or more dimensions."""
    return MatMul.apply(a, b)
