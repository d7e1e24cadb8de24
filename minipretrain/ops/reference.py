"""Composed references: the fused ops rebuilt from primitive ops, so autograd derives their gradients.

They are slower and hold more memory (every intermediate is kept for backward); they exist so that tests can
check each hand-written backward against an independent derivation, and so lessons can show both.
"""
from __future__ import annotations

import math
from typing import Any

from ..backend import array_module
from . import elementwise as ew
from . import reduce, select, shape
from .activations import _SQRT_2_OVER_PI
from .cross_entropy import IGNORE_INDEX
from .linalg import matmul


def softmax_reference(x: Any, axis: int = -1) -> Any:
    """exp(x - max) / Σ exp(x - max), from exp, sum and div (the max is a constant shift)."""
    shifted = x - x.data.max(axis=axis, keepdims=True)
    e = ew.exp(shifted)
    return e / reduce.sum(e, axis=axis, keepdims=True)


def log_softmax_reference(x: Any, axis: int = -1) -> Any:
    """(x - max) - log Σ exp(x - max)."""
    shifted = x - x.data.max(axis=axis, keepdims=True)
    return shifted - ew.log(reduce.sum(ew.exp(shifted), axis=axis, keepdims=True))


def cross_entropy_reference(logits: Any, targets: Any, ignore_index: int = IGNORE_INDEX) -> Any:
    """mean over non-ignored rows of -log_softmax(logits)[row, target], by indexing and a masked mean."""
    xp = array_module(logits.data)
    targets = xp.asarray(targets).reshape(-1)
    flat = logits.reshape(-1, logits.shape[-1])
    valid = targets != ignore_index
    picked = log_softmax_reference(flat)[xp.arange(len(targets)), xp.where(valid, targets, 0)]
    weights = valid.astype(logits.dtype) / max(int(valid.sum()), 1)
    return -reduce.sum(picked * weights)


def layer_norm_reference(x: Any, weight: Any = None, bias: Any = None, eps: float = 1e-5) -> Any:
    """(x - mean) / sqrt(var + eps) · weight + bias, from mean, var, sqrt and div."""
    centered = x - reduce.mean(x, axis=-1, keepdims=True)
    out = centered / ew.sqrt(reduce.var(x, axis=-1, keepdims=True) + eps)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def gelu_tanh_reference(x: Any) -> Any:
    """½x(1 + tanh(√(2/π)(x + 0.044715x³)))."""
    return 0.5 * x * (1.0 + ew.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x**3)))


def attention_reference(q: Any, k: Any, v: Any, causal: bool = False, key_padding_mask: Any = None,
                        keep: Any = None, scale: float | None = None) -> Any:
    """softmax(q kᵀ · scale, masked) ⊙ keep @ v from matmul, masked_fill and the composed softmax.

    ``keep`` is an explicit dropout multiplier (0 or 1/(1-p)), so the reference can replay the fused op's mask.
    Fully masked rows are not supported here (the fused op returns zeros for them).
    """
    from .attention import attention_mask

    xp = array_module(q.data)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = matmul(q, shape.transpose(k, -1, -2)) * scale
    allowed = attention_mask(xp, q.shape[-2], k.shape[-2], causal,
                             None if key_padding_mask is None else xp.asarray(key_padding_mask))
    if allowed is not None:
        scores = select.masked_fill(scores, ~allowed, -1e30 if q.dtype == xp.float64 else -1e9)
    probs = softmax_reference(scores)
    if keep is not None:
        probs = probs * keep
    return matmul(probs, v)


__all__ = [
    "softmax_reference",
    "log_softmax_reference",
    "cross_entropy_reference",
    "layer_norm_reference",
    "gelu_tanh_reference",
    "attention_reference",
]
