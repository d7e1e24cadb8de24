"""Softmax and log-softmax along one axis, computed stably (the row maximum is subtracted first)."""
from __future__ import annotations

from typing import Any

from ..autograd.function import Context, Function
from ..backend import array_module
from . import elementwise as ew
from . import reduce


def stable_softmax(x: Any, axis: int = -1) -> Any:
    """softmax on raw arrays; exp never overflows because the largest exponent is 0."""
    xp = array_module(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    e = xp.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


def stable_log_softmax(x: Any, axis: int = -1) -> Any:
    """log-softmax on raw arrays: (x - max) - log Σ exp(x - max)."""
    xp = array_module(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


class Softmax(Function):
    """p = softmax(x) along ``axis``:  pᵢ = exp(xᵢ) / Σⱼ exp(xⱼ).

    Jacobian ∂pᵢ/∂xⱼ = pᵢ(δᵢⱼ - pⱼ), so  dL/dx = p ⊙ (g - Σⱼ gⱼ pⱼ)  with g = dL/dp:
    term (1) pᵢgᵢ is the diagonal δᵢⱼ, term (2) -pᵢ Σⱼ gⱼpⱼ the rank-one -pᵢpⱼ.
    """

    @staticmethod
    def forward(ctx: Context, x: Any, axis: int = -1) -> Any:
        p = stable_softmax(x, axis)
        ctx.save_for_backward(p)
        ctx.axis = axis
        return p

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any]:
        (p,) = ctx.saved
        # >>> exercise: softmax-backward
        # dx = p ⊙ g (1)  -  p ⊙ Σⱼ gⱼpⱼ (2), both from the Jacobian of p = exp(x) / Σ exp(x)
        return (p * (grad - (grad * p).sum(axis=ctx.axis, keepdims=True)),)
        # <<< exercise


class LogSoftmax(Function):
    """y = log softmax(x) along ``axis``:  yᵢ = xᵢ - log Σⱼ exp(xⱼ).

    ∂yᵢ/∂xⱼ = δᵢⱼ - pⱼ, so  dL/dx = g - p · Σᵢ gᵢ  with p = exp(y), g = dL/dy.
    """

    @staticmethod
    def forward(ctx: Context, x: Any, axis: int = -1) -> Any:
        y = stable_log_softmax(x, axis)
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any]:
        (y,) = ctx.saved
        # dx = g (1, from the xᵢ term of y)  -  p · Σᵢ gᵢ (2, from the -log Σ exp term), p = exp(y)
        return (grad - array_module(y).exp(y) * grad.sum(axis=ctx.axis, keepdims=True),)


def softmax(x: Any, axis: int = -1) -> Any:
    """Softmax along ``axis``."""
    return Softmax.apply(x, axis=axis)


def log_softmax(x: Any, axis: int = -1) -> Any:
    """Log-softmax along ``axis``."""
    return LogSoftmax.apply(x, axis=axis)


# ------------------------------------------------------------------ composed references (autograd derives these)
def softmax_reference(x: Any, axis: int = -1) -> Any:
    """exp(x - max) / Σ exp(x - max), from exp, sum and div (the max is a constant shift)."""
    shifted = x - x.data.max(axis=axis, keepdims=True)
    e = ew.exp(shifted)
    return e / reduce.sum(e, axis=axis, keepdims=True)


def log_softmax_reference(x: Any, axis: int = -1) -> Any:
    """(x - max) - log Σ exp(x - max)."""
    shifted = x - x.data.max(axis=axis, keepdims=True)
    return shifted - ew.log(reduce.sum(ew.exp(shifted), axis=axis, keepdims=True))
