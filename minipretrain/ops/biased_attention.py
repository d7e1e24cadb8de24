"""Attention with an additive score bias (T5's relative-position bias), fused, with its composed reference.

Shapes: q (B, H, Tq, D), k (B, H, Tk, D), v (B, H, Tk, Dv), bias broadcastable to (B, H, Tq, Tk) (T5: one
(1, H, Tq, Tk) table shared by the batch); output (B, H, Tq, Dv). Tq ≠ Tk is cross-attention (decoder queries
over encoder keys), ``key_padding_mask`` (B, Tk) hides padded keys, ``causal`` hides later keys.

Forward:
    S = q kᵀ · s + bias      (1)  s = 1 for T5 (its init folds 1/√D into the query weights)
    S = -∞ where masked      (2)
    P = softmax(S)           (3)  along the keys
    P̃ = P ⊙ M / (1-p)        (4)  attention dropout (P̃ = P without dropout)
    O = P̃ v                  (5)

The bias is an ordinary input: its gradient is dS summed over the axes it was broadcast along, and from there
autograd carries it back through whatever built the bias (T5: an embedding lookup of bucket ids, whose
scatter-add backward sums the gradient of every (query, key) pair that shares a bucket).
"""
from __future__ import annotations

from typing import Any

from ..autograd.function import Context, Function
from ..backend import array_module
from . import select, shape
from ._broadcast import unbroadcast
from .attention import attention_mask, masked_softmax
from .dropout import keep_mask
from .linalg import matmul
from .softmax import softmax


class BiasedAttention(Function):
    """Fused softmax(q kᵀ·s + bias, masked) v; the module docstring numbers the forward lines."""

    @staticmethod
    def forward(ctx: Context, q: Any, k: Any, v: Any, bias: Any, key_padding_mask: Any = None,
                causal: bool = False, scale: float = 1.0, dropout_p: float = 0.0, rng: Any = None) -> Any:
        xp = array_module(q)
        scores = q @ k.swapaxes(-1, -2)                                            # (1)
        if scale != 1.0:
            scores *= q.dtype.type(scale)
        if bias is not None:
            scores += bias
        padding = None if key_padding_mask is None else xp.asarray(key_padding_mask)
        allowed = attention_mask(xp, q.shape[-2], k.shape[-2], causal, padding)
        probs = masked_softmax(scores, allowed)                                    # (2), (3)
        keep = keep_mask(probs.shape, dropout_p, rng, probs.dtype) if dropout_p > 0.0 else None
        dropped = probs * keep if keep is not None else probs                          # (4)
        ctx.save_for_backward(q, k, v, probs, keep)
        ctx.scale = scale
        ctx.bias_shape = None if bias is None else bias.shape
        return dropped @ v                                                         # (5)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any, Any, Any, Any, None]:
        q, k, v, probs, keep = ctx.saved
        # >>> exercise: attention-backward
        dropped = probs if keep is None else probs * keep
        # (5) O = P̃ v:  dv = P̃ᵀ dO,  dP̃ = dO vᵀ
        grad_v = dropped.swapaxes(-1, -2) @ grad if ctx.needs_input_grad[2] else None
        grad_probs = grad @ v.swapaxes(-1, -2)
        # (4) P̃ = P ⊙ M/(1-p):  dP = dP̃ ⊙ M/(1-p)
        if keep is not None:
            grad_probs *= keep
        # (3) softmax:  dS = P ⊙ (dP - Σⱼ dPⱼ Pⱼ)   (in dP's buffer; masked entries have P = 0, hence dS = 0 (2))
        grad_probs -= (grad_probs * probs).sum(axis=-1, keepdims=True)
        grad_scores = grad_probs
        grad_scores *= probs
        # (1) S = q kᵀ·s + bias:  term 1 dq = dS k·s,  term 2 dk = dSᵀ q·s,  term 3 dbias = Σ_broadcast dS
        scale = q.dtype.type(ctx.scale)
        grad_q = grad_k = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_q = grad_scores @ k
            if ctx.scale != 1.0:
                grad_q *= scale
        if ctx.needs_input_grad[1]:
            grad_k = grad_scores.swapaxes(-1, -2) @ q
            if ctx.scale != 1.0:
                grad_k *= scale
        if ctx.bias_shape is not None and ctx.needs_input_grad[3]:
            grad_bias = unbroadcast(grad_scores, ctx.bias_shape)
        return grad_q, grad_k, grad_v, grad_bias, None
        # <<< exercise


def biased_attention(q: Any, k: Any, v: Any, bias: Any = None, causal: bool = False, key_padding_mask: Any = None,
                     scale: float = 1.0, dropout_p: float = 0.0, rng: Any = None) -> Any:
    """softmax(q kᵀ · scale + bias, masked) v over (B, H, T, D) Tensors; ``bias`` may require a gradient.

    Args:
        bias: additive scores broadcastable to (B, H, Tq, Tk), or None.
        causal: query i sees only keys j ≤ i (+ Tk - Tq when Tq < Tk).
        key_padding_mask: (B, Tk), True/1 at real keys (Hugging Face's ``attention_mask``).
        scale: the factor on q kᵀ; 1 for T5 (no 1/√D).
        dropout_p, rng: attention-probability dropout and its seeded generator.
    """
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        raise ValueError(f"biased_attention needs q, k, v of shape (B, H, T, D); got {q.shape}, {k.shape}, {v.shape}")
    if k.shape[:-1] != v.shape[:-1] or q.shape[:2] != k.shape[:2] or q.shape[-1] != k.shape[-1]:
        raise ValueError(f"biased_attention: incompatible shapes q {q.shape}, k {k.shape}, v {v.shape}")
    full = (q.shape[0], q.shape[1], q.shape[2], k.shape[2])
    if bias is not None:
        if bias.ndim != 4 or any(b not in (1, f) for b, f in zip(bias.shape, full)):
            raise ValueError(f"biased_attention: bias of shape {tuple(bias.shape)} does not broadcast to (B, H, Tq, Tk)"
                             f" = {full}")
    if key_padding_mask is not None and tuple(key_padding_mask.shape) != (k.shape[0], k.shape[2]):
        raise ValueError(f"biased_attention: key_padding_mask must have shape (B, Tk) = {(k.shape[0], k.shape[2])}, "
                         f"got {tuple(key_padding_mask.shape)}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"biased_attention: dropout_p must be in [0, 1), got {dropout_p}")
    if dropout_p > 0.0 and rng is None:
        raise ValueError("biased_attention: dropout_p > 0 needs a seeded generator (rng=...)")
    return BiasedAttention.apply(q, k, v, bias, key_padding_mask, causal=causal, scale=scale, dropout_p=dropout_p,
                                 rng=rng)


def biased_attention_reference(q: Any, k: Any, v: Any, bias: Any = None, causal: bool = False,
                               key_padding_mask: Any = None, scale: float = 1.0, keep: Any = None) -> Any:
    """The same from matmul, add, masked_fill and softmax; its mask is built here, independently of the fused op's.

    ``keep`` replays a dropout multiplier (0 or 1/(1-p)). Rows with no visible key are not supported.
    """
    xp = array_module(q.data)
    tq, tk = q.shape[-2], k.shape[-2]
    scores = matmul(q, shape.transpose(k, -1, -2)) * scale
    if bias is not None:
        scores = scores + bias
    hidden = xp.zeros((1, 1, tq, tk), dtype=bool)
    if causal:  # key j is after query i (queries lined up with the last Tq keys)
        hidden = hidden | (xp.arange(tk)[None, :] > xp.arange(tq)[:, None] + (tk - tq))[None, None]
    if key_padding_mask is not None:
        hidden = hidden | ~xp.asarray(key_padding_mask, dtype=bool)[:, None, None, :]
    scores = select.masked_fill(scores, hidden, -1e30 if q.dtype == xp.float64 else -1e9)
    probs = softmax(scores, axis=-1)
    if keep is not None:
        probs = probs * keep
    return matmul(probs, v)
