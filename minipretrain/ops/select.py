"""Choosing between values by a condition: where and masked_fill."""
from __future__ import annotations

from typing import Any

from ..autograd.function import Context, Function, constant
from ..backend import array_module
from ._broadcast import unbroadcast


class Where(Function):
    """y = cond ? a : b (broadcasting).   dL/da = dL/dy where cond, dL/db = dL/dy elsewhere."""

    lifts_constants = True

    @staticmethod
    def forward(ctx: Context, condition: Any, a: Any, b: Any) -> Any:
        condition = array_module(a, b).asarray(condition).astype(bool)
        ctx.save_for_backward(condition)
        ctx.a_shape, ctx.b_shape = a.shape, b.shape
        return array_module(a, b).where(condition, a, b)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[None, Any, Any]:
        (condition,) = ctx.saved
        grad_a = unbroadcast(grad * condition, ctx.a_shape) if ctx.needs_input_grad[1] else None
        grad_b = unbroadcast(grad * ~condition, ctx.b_shape) if ctx.needs_input_grad[2] else None
        return None, grad_a, grad_b


class MaskedFill(Function):
    """y = value where mask, else x.   dL/dx = dL/dy where the mask is False, 0 where it is True."""

    @staticmethod
    def forward(ctx: Context, x: Any, mask: Any, value: float = 0.0) -> Any:
        mask = array_module(x).broadcast_to(mask.astype(bool), x.shape)
        ctx.save_for_backward(mask)
        return array_module(x).where(mask, x.dtype.type(value), x)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any, None]:
        (mask,) = ctx.saved
        return grad * ~mask, None


def where(condition: Any, a: Any, b: Any) -> Any:
    """Pick ``a`` where ``condition`` holds and ``b`` elsewhere (no gradient flows to the condition)."""
    return Where.apply(constant(condition), a, b)


def masked_fill(x: Any, mask: Any, value: float) -> Any:
    """x with ``value`` written where ``mask`` (broadcast to x's shape) is True."""
    return MaskedFill.apply(x, constant(mask, like=x), value=value)
