"""Cross-entropy fused with log-softmax: the loss of every language-modelling objective here."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd.function import Context, Function, constant
from ..backend import array_module, id_range
from . import reduce
from .softmax import log_softmax_reference

IGNORE_INDEX = -100
_REDUCTIONS = ("mean", "sum", "none")


class CrossEntropy(Function):
    """Negative log-likelihood of integer targets under softmax(logits), in one step.

    Shapes: logits (N, V), targets (N,) integers; a target equal to ``ignore_index`` contributes nothing.
    Loss per row: ℓₙ = -log softmax(zₙ)[tₙ] = logsumexp(zₙ) - zₙ[tₙ].
    Gradient: ∂ℓₙ/∂zₙ = softmax(zₙ) - onehot(tₙ)  — no division by a probability, so it is stable even when
    softmax underflows. With ``reduction="mean"`` the loss is divided by the number of non-ignored targets
    (0 when every target is ignored: nothing to learn, nothing to divide).
    Forward, numbered for the backward: (1) c = z - max z;  (2) e = exp c;  (3) S = Σ e;
    (4) ℓ = log S - c[t]  (= logsumexp z - z[t]);  and p = e / S, the softmax the backward needs, is
    normalised in e's buffer: one exp pass in all (the backward no longer recomputes it from log p).
    """

    @staticmethod
    def forward(ctx: Context, logits: Any, targets: Any, ignore_index: int = IGNORE_INDEX,
                reduction: str = "mean") -> Any:
        xp = array_module(logits)
        valid = targets != ignore_index
        safe_targets = xp.where(valid, targets, 0)
        rows = xp.arange(logits.shape[0])
        shifted = logits - logits.max(axis=-1, keepdims=True)  # (1)
        target_logit = shifted[rows, safe_targets]  # c[t], read before (2) overwrites c
        probs = xp.exp(shifted, out=shifted)  # (2)
        total = probs.sum(axis=-1)  # (3)
        nll = xp.log(total)
        nll -= target_logit  # (4)
        nll *= valid
        probs /= total[:, None]  # p = e / S
        # The count stays on the device (as the loss's dtype; exact below 2**24 targets): int() would sync.
        count = xp.maximum(valid.sum(), 1).astype(probs.dtype)
        ctx.save_for_backward(probs, safe_targets, valid)
        ctx.reduction, ctx.count = reduction, count
        if reduction == "none":
            return nll
        total = nll.sum()
        return total / count if reduction == "mean" else total

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any, None]:
        probs, targets, valid = ctx.saved
        reduction, count = ctx.reduction, ctx.count
        xp = array_module(probs)
        # >>> exercise: cross-entropy-backward
        # dℓₙ/dzₙ = softmax(zₙ) (from log S in (4), through (3)-(2)-(1))  -  onehot(tₙ) (from -c[t] in (4));
        # the max in (1) shifts both terms alike and cancels. A copy, so a retained graph can run backward again.
        grad_logits = probs.copy()
        grad_logits[xp.arange(len(targets)), targets] -= 1
        # then the reduction's chain rule: ignored rows get 0, "mean" divides by the count of the others
        if reduction == "none":
            weight = grad * valid
        else:
            weight = valid * (grad / count if reduction == "mean" else grad)
        grad_logits *= weight.astype(grad_logits.dtype)[:, None]
        return grad_logits, None
        # <<< exercise


def cross_entropy(logits: Any, targets: Any, ignore_index: int = IGNORE_INDEX, reduction: str = "mean") -> Any:
    """Softmax cross-entropy of ``logits`` (..., V) against integer ``targets`` (...).

    Targets equal to ``ignore_index`` (-100, as PyTorch and Hugging Face) are skipped; ``reduction`` is
    "mean" over the non-ignored targets, "sum", or "none" (one loss per target, shape of ``targets``).
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"cross_entropy: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    target_array = constant(targets)
    target_array = target_array if hasattr(target_array, "dtype") else np.asarray(target_array)
    if target_array.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: targets must be integer class ids, got dtype {target_array.dtype}")
    if logits.shape[:-1] != target_array.shape:
        raise ValueError(
            f"cross_entropy: logits {logits.shape} need targets of shape {logits.shape[:-1]}, got {target_array.shape}"
        )
    vocab = logits.shape[-1]
    # Checked before the move: free on host targets; device targets cost one read.
    low, high = id_range(target_array, ignore_index) if target_array.size else (0, 0)
    if low < 0 or high >= vocab:
        raise ValueError(
            f"cross_entropy: targets must lie in [0, {vocab}) or equal ignore_index={ignore_index}; "
            f"found values from {low} to {high}"
        )
    target_array = array_module(logits.data).asarray(target_array)
    flat_logits = logits.reshape(-1, vocab)
    loss = CrossEntropy.apply(flat_logits, target_array.reshape(-1), ignore_index=ignore_index, reduction=reduction)
    return loss.reshape(target_array.shape) if reduction == "none" else loss


def cross_entropy_reference(logits: Any, targets: Any, ignore_index: int = IGNORE_INDEX) -> Any:
    """Composed reference: mean over non-ignored rows of -log_softmax(logits)[row, target], by indexing and a
    masked mean (autograd derives its gradient)."""
    xp = array_module(logits.data)
    targets = xp.asarray(targets).reshape(-1)
    flat = logits.reshape(-1, logits.shape[-1])
    valid = targets != ignore_index
    picked = log_softmax_reference(flat)[xp.arange(len(targets)), xp.where(valid, targets, 0)]
    weights = valid.astype(logits.dtype) / max(int(valid.sum()), 1)
    return -reduce.sum(picked * weights)
