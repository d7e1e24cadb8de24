"""Undoing broadcasting in backward: the one helper every binary op shares."""
from __future__ import annotations

from typing import Any


def unbroadcast(grad: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``grad`` down to ``shape``, the inverse of NumPy broadcasting.

    Broadcasting copies an input along new leading axes and along axes of size 1, so its gradient is the
    sum of the upstream gradient over exactly those axes.
    """
    # >>> exercise: unbroadcast
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, size in enumerate(shape) if size == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad
    # <<< exercise


def expand_reduced(grad: Any, shape: tuple[int, ...], axis: Any, keepdims: bool) -> Any:
    """Give the gradient of a reduction back the reduced axes (as size 1), ready to broadcast to ``shape``."""
    if keepdims or axis is None:
        return grad.reshape((1,) * len(shape)) if axis is None and not keepdims else grad
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    axes = sorted(a % len(shape) for a in axes)
    for a in axes:
        grad = grad.reshape(grad.shape[:a] + (1,) + grad.shape[a:])
    return grad


def normalize_axis(axis: Any, ndim: int) -> Any:
    """``axis`` as a tuple of non-negative ints (or None for all axes)."""
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
    return tuple(a % ndim for a in axes)
