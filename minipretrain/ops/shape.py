"""Ops that move values around without changing them: reshape, transpose/permute, indexing, concat, split."""
from __future__ import annotations

from typing import Any, Sequence

from ..autograd.function import Context, Function, constant
from ..backend import array_module, scatter_add


class Reshape(Function):
    """y = x viewed with a new shape.   dL/dx = dL/dy reshaped back."""

    @staticmethod
    def forward(ctx: Context, x: Any, shape: tuple[int, ...] = ()) -> Any:
        ctx.in_shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any]:
        return (grad.reshape(ctx.in_shape),)


class Permute(Function):
    """y = x with its axes reordered by ``axes``.   dL/dx = dL/dy permuted by the inverse order."""

    @staticmethod
    def forward(ctx: Context, x: Any, axes: tuple[int, ...] = ()) -> Any:
        ctx.axes = axes
        return x.transpose(axes)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any]:
        inverse = [0] * len(ctx.axes)
        for position, axis in enumerate(ctx.axes):
            inverse[axis] = position
        return (grad.transpose(inverse),)


def _has_advanced_index(index: Any) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(hasattr(p, "shape") and p.ndim > 0 or isinstance(p, (list, tuple)) for p in parts)


class GetItem(Function):
    """y = x[index] (slices, ints, integer arrays, boolean masks).

    dL/dx = zeros with dL/dy scattered back to the selected places; an element picked several times (repeated
    integer indices) receives the sum of its gradients, so the scatter must add, not assign.
    """

    @staticmethod
    def forward(ctx: Context, x: Any, index: Any = None) -> Any:
        ctx.shape, ctx.dtype, ctx.index = x.shape, x.dtype, index
        return x[index]

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any]:
        index = ctx.index
        grad_x = array_module(grad).zeros(ctx.shape, dtype=ctx.dtype)
        if _has_advanced_index(index):
            scatter_add(grad_x, index, grad)
        else:
            grad_x[index] = grad  # basic indexing never selects an element twice
        return (grad_x,)


class Concat(Function):
    """y = concatenate(xs, axis).   dL/dxᵢ = the slice of dL/dy that xᵢ occupies."""

    @staticmethod
    def forward(ctx: Context, *xs: Any, axis: int = 0) -> Any:
        ctx.axis = axis
        ctx.sizes = [x.shape[axis] for x in xs]
        return array_module(*xs).concatenate(xs, axis=axis)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any, ...]:
        xp = array_module(grad)
        boundaries = list(_cumulative(ctx.sizes))[:-1]
        return tuple(xp.split(grad, boundaries, axis=ctx.axis))


def _cumulative(sizes: Sequence[int]) -> list[int]:
    total, out = 0, []
    for size in sizes:
        total += size
        out.append(total)
    return out


def reshape(x: Any, shape: tuple[int, ...]) -> Any:
    """x with a new shape (one entry may be -1)."""
    return Reshape.apply(x, shape=tuple(shape))


def permute(x: Any, axes: tuple[int, ...]) -> Any:
    """x with its axes in the order ``axes``."""
    if sorted(a % x.ndim for a in axes) != list(range(x.ndim)):
        raise ValueError(f"permute: {axes} is not an ordering of the {x.ndim} axes of a tensor of shape {x.shape}")
    return Permute.apply(x, axes=tuple(a % x.ndim for a in axes))


def transpose(x: Any, axis1: int = -2, axis2: int = -1) -> Any:
    """x with two axes swapped (the last two by default)."""
    axes = list(range(x.ndim))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return Permute.apply(x, axes=tuple(axes))


def getitem(x: Any, index: Any) -> Any:
    """x[index]; Tensors inside the index are used by value."""
    index = tuple(constant(i) for i in index) if isinstance(index, tuple) else constant(index)
    return GetItem.apply(x, index=index)


def concat(tensors: Sequence[Any], axis: int = 0) -> Any:
    """Join tensors along ``axis``; all other dimensions must agree."""
    if len(tensors) == 0:
        raise ValueError("concat needs at least one tensor")
    return Concat.apply(*tensors, axis=axis)


def split(x: Any, sizes_or_sections: int | Sequence[int], axis: int = -1) -> list[Any]:
    """Cut x along ``axis`` into equal ``sections`` (an int) or pieces of the given sizes (a list).

    Each piece is a slice (``getitem``), so its backward scatters into the right place of dL/dx.
    """
    length = x.shape[axis]
    if isinstance(sizes_or_sections, int):
        if length % sizes_or_sections:
            raise ValueError(f"split: axis {axis} of length {length} does not divide into {sizes_or_sections} parts")
        sizes = [length // sizes_or_sections] * sizes_or_sections
    else:
        sizes = list(sizes_or_sections)
        if sum(sizes) != length:
            raise ValueError(f"split: sizes {sizes} add up to {sum(sizes)}, but axis {axis} has length {length}")
    axis = axis % x.ndim
    pieces, start = [], 0
    for size in sizes:
        index = (slice(None),) * axis + (slice(start, start + size),)
        pieces.append(getitem(x, index))
        start += size
    return pieces
