"""Binary cross-entropy fused with the sigmoid (ELECTRA's replaced-token-detection loss), and its reference.

Shapes: logits z (...), targets y (...) in [0, 1], an optional 0/1 ``mask`` (...) of the positions that count.
With σ(z) = 1 / (1 + e⁻ᶻ) the loss of one position is

    ℓ = -y·log σ(z) - (1-y)·log(1-σ(z))
      = max(z, 0) - z·y + log(1 + e^(-|z|))          (1)  the form that never overflows (|z| = 1e4 is fine)

and its derivative is the familiar  ∂ℓ/∂z = σ(z) - y  (no division by a probability, as with softmax
cross-entropy). ``reduction="mean"`` divides by the number of counted positions (0 when there are none).
"""
from __future__ import annotations

from typing import Any

from ..autograd.function import Context, Function
from ..backend import array_module
from . import elementwise as ew
from . import reduce

_REDUCTIONS = ("mean", "sum", "none")


def stable_sigmoid(z: Any) -> Any:
    """σ(z) on raw arrays without overflow: e^(-|z|) is always ≤ 1."""
    xp = array_module(z)
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)


class BinaryCrossEntropyWithLogits(Function):
    """Sum or mean of (1) over the counted positions; see the module docstring."""

    @staticmethod
    def forward(ctx: Context, logits: Any, targets: Any, mask: Any, reduction: str = "mean") -> Any:
        xp = array_module(logits)
        targets = targets.astype(logits.dtype, copy=False)
        weight = xp.ones_like(logits) if mask is None else xp.asarray(mask).astype(logits.dtype)
        per_position = xp.maximum(logits, 0) - logits * targets + xp.log1p(xp.exp(-xp.abs(logits)))  # (1)
        per_position *= weight
        count = max(int(xp.count_nonzero(weight)), 1)
        ctx.save_for_backward(logits, targets, weight)
        ctx.reduction, ctx.count = reduction, count
        if reduction == "none":
            return per_position
        total = per_position.sum()
        return total / count if reduction == "mean" else total

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any, None, None]:
        logits, targets, weight = ctx.saved
        # (1): ∂ℓ/∂z = 1[z>0] - y - sign(z)·e^(-|z|)/(1 + e^(-|z|)) = σ(z) - y, counted positions only
        grad_logits = (stable_sigmoid(logits) - targets) * weight
        # the reduction: "sum" passes dL/dℓ on to every position, "mean" divides it by the count
        grad_logits *= grad if ctx.reduction != "mean" else grad / ctx.count
        return (grad_logits, None, None)


def binary_cross_entropy_with_logits(logits: Any, targets: Any, mask: Any = None, reduction: str = "mean") -> Any:
    """BCE of ``logits`` against ``targets`` (same shape, values in [0, 1]), over the positions where ``mask``.

    ``targets`` and ``mask`` may be arrays or Tensors (no gradient flows to either).
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"binary_cross_entropy_with_logits: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if tuple(targets.shape) != tuple(logits.shape):
        raise ValueError(f"binary_cross_entropy_with_logits: targets {tuple(targets.shape)} must have the shape of "
                         f"logits {tuple(logits.shape)}")
    if mask is not None and tuple(mask.shape) != tuple(logits.shape):
        raise ValueError(f"binary_cross_entropy_with_logits: mask {tuple(mask.shape)} must have the shape of "
                         f"logits {tuple(logits.shape)}")
    return BinaryCrossEntropyWithLogits.apply(logits, targets, mask, reduction=reduction)


def binary_cross_entropy_with_logits_reference(logits: Any, targets: Any, mask: Any = None) -> Any:
    """mean of -y·log σ(z) - (1-y)·log(1-σ(z)) from exp, log and div (naive: overflows for large |z|)."""
    xp = array_module(logits.data)
    y = xp.asarray(targets, dtype=logits.dtype)
    weight = xp.ones(logits.shape, logits.dtype) if mask is None else xp.asarray(mask).astype(logits.dtype)
    sigma = 1.0 / (1.0 + ew.exp(-logits))
    per_position = -(ew.log(sigma) * y + ew.log(1.0 - sigma) * (1.0 - y))
    return reduce.sum(per_position * weight) / max(int(xp.count_nonzero(weight)), 1)
