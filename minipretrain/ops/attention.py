"""Scaled dot-product attention, fused: a hand-derived backward with no autograd inside.

Shapes: q (B, H, Tq, D), k (B, H, Tk, D), v (B, H, Tk, Dv); output (B, H, Tq, Dv).

Forward, numbered for the backward:
    (1) S = (q · s) kᵀ        scores, s = 1/√D by default (q is scaled: Tq·D products instead of Tq·Tk)
    (2) S = -∞ where masked   (causal: key j after query i; padding: key j is padding)
    (3) P = softmax(S)        along the keys
    (4) P̃ = P ⊙ M / (1-p)     attention dropout (M a 0/1 keep mask; P̃ = P without dropout)
    (5) O = P̃ v

Backward, given dO = dL/dO (every product batched over B and H), each step undoing one forward line:
    from (5):  dv = P̃ᵀ dO,   dP̃ = dO vᵀ
    from (4):  dP = dP̃ ⊙ M / (1-p)
    from (3):  dS = P ⊙ (dP - Σⱼ dPⱼ Pⱼ)     the softmax Jacobian applied row by row
    from (2):  nothing: a masked score has P = 0, hence dS = 0
    from (1):  dq = dS k · s,   dk = dSᵀ (q · s)
Masked scores get P = 0, hence dS = 0: nothing flows to what was not attended to. The forward saves P (and
M), the same trade llm.c makes: O(T²) memory per head, but no recomputation of the softmax.
"""
from __future__ import annotations

import math
from typing import Any

from ..autograd.function import Context, Function, constant
from ..backend import array_module
from . import select, shape
from .dropout import keep_mask
from .linalg import matmul
from .softmax import softmax_reference


def attention_mask(xp: Any, tq: int, tk: int, causal: bool, key_padding_mask: Any, window: int | None = None) -> Any:
    """Boolean mask (B or 1, 1, Tq, Tk), True where query i may attend to key j; None when nothing is masked.

    Causal with Tq < Tk (decoding with a cache) lines the queries up with the last Tq keys. ``window`` (causal
    only) bands the causal mask: query i sees keys i - window + 1 .. i, its own position and the window - 1
    before it; a window of at least Tk is the plain causal mask.
    """
    allowed = None
    if causal:
        query_pos = xp.arange(tq)[:, None] + (tk - tq)
        allowed = (xp.arange(tk)[None, :] <= query_pos)[None, None]
        if window is not None and window < tk:
            allowed = allowed & (xp.arange(tk)[None, :] > query_pos - window)[None, None]
    if key_padding_mask is not None:
        keys = key_padding_mask.astype(bool)[:, None, None, :]
        allowed = keys if allowed is None else allowed & keys
    return allowed


def masked_softmax(scores: Any, allowed: Any, rows_may_be_empty: bool = True) -> Any:
    """softmax over the last axis with disallowed entries at probability 0 (rows with no key give all zeros).

    Works in place on ``scores`` (the caller's temporary): one (B, H, Tq, Tk) array instead of five, which
    matters because these are the largest arrays of a forward pass. ``rows_may_be_empty=False`` (the caller
    knows every row keeps a key: causal attention without padding) skips the two fixes for empty rows.
    """
    xp = array_module(scores)
    if allowed is not None:
        xp.copyto(scores, -xp.inf, where=~allowed)
    row_max = scores.max(axis=-1, keepdims=True)
    empty_rows_possible = allowed is not None and rows_may_be_empty
    if empty_rows_possible:  # a row with no allowed key has max -inf; shift it by 0 instead (all exp() give 0)
        xp.copyto(row_max, 0, where=~xp.isfinite(row_max))  # not row_max[mask] = 0: a mask index syncs on GPU
    scores -= row_max
    probs = xp.exp(scores, out=scores)
    total = probs.sum(axis=-1, keepdims=True)
    if empty_rows_possible:
        xp.copyto(total, 1, where=total == 0)
    probs *= xp.reciprocal(total, out=total)  # one division per row, then multiplications
    return probs


class ScaledDotProductAttention(Function):
    """Fused multi-head attention; see the module docstring for the derivation."""

    @staticmethod
    def forward(ctx: Context, q: Any, k: Any, v: Any, key_padding_mask: Any = None, causal: bool = False,
                dropout_p: float = 0.0, rng: Any = None, scale: float | None = None, window: int | None = None) -> Any:
        xp = array_module(q)
        scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
        tq, tk = q.shape[-2], k.shape[-2]
        scaled_q = q * q.dtype.type(scale)
        scores = scaled_q @ k.swapaxes(-1, -2)  # (1)
        # Causal attention without padding leaves every query at least its own key (when Tq <= Tk), in a window
        # too: no empty rows.
        every_row_keeps_a_key = key_padding_mask is None and (not causal or tq <= tk)
        probs = masked_softmax(scores, attention_mask(xp, tq, tk, causal, key_padding_mask, window),  # (2), (3)
                               rows_may_be_empty=not every_row_keeps_a_key)
        if dropout_p > 0.0:  # (4)
            keep = keep_mask(probs.shape, dropout_p, rng, probs.dtype)
            dropped = probs * keep
        else:
            keep, dropped = None, probs
        ctx.save_for_backward(scaled_q, k, v, probs, keep)
        ctx.scale = scale
        return dropped @ v  # (5)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any, Any, Any, None]:
        scaled_q, k, v, probs, keep = ctx.saved
        xp = array_module(probs)
        # >>> exercise: attention-backward
        scale = scaled_q.dtype.type(ctx.scale)
        dropped = probs if keep is None else probs * keep
        # from (5) O = P̃ v
        grad_v = dropped.swapaxes(-1, -2) @ grad
        grad_probs = grad @ v.swapaxes(-1, -2)
        # from (4) P̃ = P ⊙ M / (1-p): keep already holds M / (1-p)
        if keep is not None:
            grad_probs *= keep
        # from (3) P = softmax(S): dS = P ⊙ (dP - Σⱼ dPⱼ Pⱼ), in dP's own buffer (the (B, H, Tq, Tk) arrays
        # dominate memory); the row sums by einsum, without a (B, H, Tq, Tk) product array. (FlashAttention's
        # Σⱼ dPⱼ Pⱼ = dO · O is equal in exact arithmetic, but rounds differently from dP: a row with one key,
        # whose dS must be exactly 0, kept ~1e-17 under dropout.) (2) needs no step: masked entries have
        # P = 0, so their dS is 0 here.
        row_dot = xp.einsum("...ij,...ij->...i", grad_probs, probs)[..., None]
        grad_probs -= row_dot
        grad_scores = grad_probs
        grad_scores *= probs
        # from (1) S = (q · s) kᵀ
        grad_q = grad_scores @ k
        grad_q *= scale
        grad_k = grad_scores.swapaxes(-1, -2) @ scaled_q
        return grad_q, grad_k, grad_v, None
        # <<< exercise


def scaled_dot_product_attention(q: Any, k: Any, v: Any, causal: bool = False, key_padding_mask: Any = None,
                                 dropout_p: float = 0.0, rng: Any = None, scale: float | None = None,
                                 window: int | None = None) -> Any:
    """Attention softmax(q kᵀ · scale + mask) v over Tensors of shape (B, H, T, D).

    Args:
        causal: query i sees only keys j ≤ i (GPT).
        window: with ``causal``, query i sees only keys i - window < j ≤ i (a banded causal mask, e.g. to
            measure how much context a trained model uses); None or ≥ Tk is the whole causal mask.
        key_padding_mask: (B, Tk) bool or 0/1, True/1 for real tokens, False/0 for padding (as Hugging
            Face's ``attention_mask``; note PyTorch's ``key_padding_mask`` uses the opposite sign).
        dropout_p: attention-probability dropout (pass ``rng``, a seeded generator); 0 in evaluation.
        scale: defaults to 1/√D.
    """
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        raise ValueError(f"attention needs q, k, v of shape (B, H, T, D); got {q.shape}, {k.shape}, {v.shape}")
    if k.shape[:-1] != v.shape[:-1] or q.shape[:2] != k.shape[:2] or q.shape[-1] != k.shape[-1]:
        raise ValueError(f"attention: incompatible shapes q {q.shape}, k {k.shape}, v {v.shape}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"attention: dropout_p must be in [0, 1), got {dropout_p}")
    if dropout_p > 0.0 and rng is None:
        raise ValueError("attention: dropout_p > 0 needs a seeded generator (rng=...)")
    if window is not None and (not causal or isinstance(window, bool) or int(window) != window or window < 1):
        raise ValueError(f"attention: window must be a whole number >= 1 and needs causal=True, got window={window!r}, "
                         f"causal={causal}")
    if key_padding_mask is not None:
        key_padding_mask = constant(key_padding_mask, like=q)
        if key_padding_mask.shape != (k.shape[0], k.shape[2]):
            raise ValueError(
                f"attention: key_padding_mask must have shape (B, Tk) = {(k.shape[0], k.shape[2])}, "
                f"got {key_padding_mask.shape}"
            )
    return ScaledDotProductAttention.apply(q, k, v, key_padding_mask, causal=causal, dropout_p=dropout_p,
                                           rng=rng, scale=scale, window=None if window is None else int(window))


def attention_reference(q: Any, k: Any, v: Any, causal: bool = False, key_padding_mask: Any = None,
                        keep: Any = None, scale: float | None = None, window: int | None = None) -> Any:
    """Composed reference: softmax(q kᵀ · scale, masked) ⊙ keep @ v from matmul, masked_fill and the composed
    softmax, so autograd derives the gradient the fused op writes by hand.

    Its masks are built here, independently of the fused op's ``attention_mask``: a bug in either shows up as
    a disagreement. ``keep`` is an explicit dropout multiplier (0 or 1/(1-p)), so the reference can replay the
    fused op's dropout. Fully masked rows are not supported here (the fused op returns zeros for them).
    """
    xp = array_module(q.data)
    tq, tk = q.shape[-2], k.shape[-2]
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = matmul(q, shape.transpose(k, -1, -2)) * scale
    blocked = xp.zeros((1, 1, tq, tk), dtype=bool)
    if causal:  # the queries are the last tq positions: query i may not see key j when j - i > tk - tq
        blocked = blocked | xp.triu(xp.ones((tq, tk), dtype=bool), k=tk - tq + 1)[None, None]
        if window is not None:  # ... nor key j when i - j >= window (query i sits at key position i + tk - tq)
            blocked = blocked | xp.tril(xp.ones((tq, tk), dtype=bool), k=tk - tq - window)[None, None]
    if key_padding_mask is not None:  # 0 / False marks a padding key
        blocked = blocked | (xp.asarray(key_padding_mask) == 0)[:, None, None, :]
    scores = select.masked_fill(scores, blocked, -1e30 if q.dtype == xp.float64 else -1e9)
    probs = softmax_reference(scores)
    if keep is not None:
        probs = probs * keep
    return matmul(probs, v)
