"""Gradient-norm clipping: cap the size of one update without changing its direction."""
from __future__ import annotations

import math
from typing import Any

from ..backend import array_module
from .optimizer import collect_params

#: Added to the norm before dividing (as torch), so clipping never divides by zero.
CLIP_EPS = 1e-6


def clip_grad_norm(params: Any, max_norm: float) -> float:
    """Scale all gradients together so their global L2 norm is at most ``max_norm``; return the norm before.

    The global norm treats every gradient as one long vector:  ‖g‖ = √(Σ_p Σ_i g_{p,i}²).
    When ‖g‖ > max_norm every gradient is multiplied by max_norm / (‖g‖ + 1e-6); otherwise
    nothing changes. Parameters without a gradient are skipped. A non-finite norm (an overflow or NaN in
    the backward pass) is returned as is and the gradients are left alone, so the caller can skip the step.

    Args:
        params: a model (its ``parameters()``) or an iterable of Tensors.
        max_norm: the largest allowed norm, > 0.

    Returns:
        ‖g‖ before clipping, as a Python float (0.0 when no parameter has a gradient).
    """
    if not max_norm > 0:
        raise ValueError(f"clip_grad_norm: max_norm must be > 0, got {max_norm}")
    with_grad = [p for p in collect_params(params) if p.grad is not None]
    if not with_grad:
        return 0.0
    grads = [p.grad for p in with_grad]
    # Squares are summed in float64 so float32 gradients of many parameters lose no precision; the sum of
    # device scalars stays on the device and is copied to the host once.
    squared = sum(array_module(g).sum(array_module(g).square(g), dtype=array_module(g).float64) for g in grads)
    total_norm = math.sqrt(float(squared))
    if math.isfinite(total_norm) and total_norm > max_norm:
        scale = max_norm / (total_norm + CLIP_EPS)
        # New arrays rather than ``*=``: the engine may hand one gradient array (or views of it) to several
        # leaves, and scaling shared memory in place would scale it twice.
        for p in with_grad:
            p.grad = p.grad * scale
    return total_norm
