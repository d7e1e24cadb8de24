"""Reductions over axes: sum, mean, max, var."""
from __future__ import annotations

from typing import Any

from ..autograd.function import Context, Function
from ..backend import array_module
from ._broadcast import expand_reduced, normalize_axis


def _count(shape: tuple[int, ...], axes: Any) -> int:
    if axes is None:
        axes = range(len(shape))
    count = 1
    for a in axes:
        count *= shape[a]
    return count


class Sum(Function):
    """y = Σ_axis x.   dL/dx = dL/dy broadcast back over the summed axes."""

    @staticmethod
    def forward(ctx: Context, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        ctx.shape, ctx.axis, ctx.keepdims = x.shape, axis, keepdims
        return x.sum(axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any]:
        return (_broadcast_to(expand_reduced(grad, ctx.shape, ctx.axis, ctx.keepdims), ctx.shape),)


class Mean(Function):
    """y = (1/n) Σ_axis x.   dL/dx = dL/dy / n, broadcast back (n = number of elements averaged):
    the sum's backward of dL/dy / n."""

    @staticmethod
    def forward(ctx: Context, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        ctx.shape, ctx.axis, ctx.keepdims = x.shape, axis, keepdims
        return x.mean(axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any]:
        return Sum.backward(ctx, grad / _count(ctx.shape, ctx.axis))


class Max(Function):
    """y = max_axis x.   dL/dx = dL/dy at the maximal elements (shared equally among ties), 0 elsewhere."""

    @staticmethod
    def forward(ctx: Context, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        out = x.max(axis=axis, keepdims=True)
        is_max = x == out
        ctx.save_for_backward(is_max)
        ctx.shape, ctx.axis, ctx.keepdims = x.shape, axis, keepdims
        return out if keepdims else (out.reshape(()) if axis is None else out.squeeze(axis=axis))

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any]:
        (is_max,) = ctx.saved
        # Cast the tie count to grad's dtype: bool / int64 would silently make a float32 gradient float64.
        ties = is_max.sum(axis=ctx.axis, keepdims=True).astype(grad.dtype)
        return (expand_reduced(grad, ctx.shape, ctx.axis, ctx.keepdims) * is_max / ties,)


class Var(Function):
    """y = (1/(n - ddof)) Σ_axis (x - x̄)².   dL/dx = dL/dy · 2(x - x̄)/(n - ddof).

    The term through x̄ vanishes because Σ(x - x̄) = 0.
    """

    @staticmethod
    def forward(ctx: Context, x: Any, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Any:
        centered = x - x.mean(axis=axis, keepdims=True)
        ctx.save_for_backward(centered)
        ctx.shape, ctx.axis, ctx.keepdims = x.shape, axis, keepdims
        ctx.denominator = _count(x.shape, axis) - ddof
        return (centered * centered).sum(axis=axis, keepdims=keepdims) / ctx.denominator

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any]:
        (centered,) = ctx.saved
        return (expand_reduced(grad, ctx.shape, ctx.axis, ctx.keepdims) * (2 / ctx.denominator) * centered,)


def _broadcast_to(grad: Any, shape: tuple[int, ...]) -> Any:
    # A real (writable) array: a read-only broadcast view would break code that updates grads in place.
    return array_module(grad).broadcast_to(grad, shape).copy()


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001 - NumPy's name
    """Sum over ``axis`` (all axes when None)."""
    return Sum.apply(x, axis=normalize_axis(axis, x.ndim), keepdims=keepdims)


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Mean over ``axis`` (all axes when None)."""
    return Mean.apply(x, axis=normalize_axis(axis, x.ndim), keepdims=keepdims)


def max(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001 - NumPy's name
    """Maximum over ``axis``; ties share the gradient equally."""
    return Max.apply(x, axis=normalize_axis(axis, x.ndim), keepdims=keepdims)


def var(x: Any, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Any:
    """Variance over ``axis``; ``ddof=0`` (the default) is the biased estimator that layer norm uses."""
    axes = normalize_axis(axis, x.ndim)
    if _count(x.shape, axes) - ddof <= 0:
        raise ValueError(f"var: {_count(x.shape, axes)} elements with ddof={ddof} leave no degrees of freedom")
    return Var.apply(x, axis=axes, keepdims=keepdims, ddof=ddof)
