"""Self-attention, the MLP, and transformer blocks in GPT-2 (pre-LN) and BERT (post-LN) form.

Attribute names follow Hugging Face's GPT-2 and BERT modules on purpose (``attn.c_attn``, ``ln_1``,
``attention.self.query``, ``output.LayerNorm``), so a parameter's dotted name in our model *is* its name in a
``transformers`` checkpoint and the interop layer needs no renaming table.

Shapes: B batch, T sequence length, C = n_embd model width, H heads, D = C / H head width.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import ops
from ..autograd.tensor import Tensor
from ..backend import array_module
from .layers import Conv1D, Dropout, LayerNorm, Linear
from .module import Module, RandomSource


class LayerCache:
    """Keys and values of one attention layer for the tokens seen so far, preallocated (B, H, max_len, D).

    Writing new keys into a preallocated buffer (instead of concatenating) keeps each decoding step O(T)
    rather than copying the whole cache every step.
    """

    def __init__(self, keys: Any, values: Any) -> None:
        self.keys, self.values = keys, values

    @property
    def capacity(self) -> int:
        return self.keys.shape[2]


class KVCache:
    """The cache of every layer of a decoder, plus how many positions it holds (``length``)."""

    def __init__(self, n_layer: int, batch: int, n_head: int, max_len: int, head_dim: int, dtype: Any,
                 xp: Any = np) -> None:
        shape = (batch, n_head, max_len, head_dim)
        self.layers = [LayerCache(xp.empty(shape, dtype=dtype), xp.empty(shape, dtype=dtype)) for _ in range(n_layer)]
        self.length = 0

    @property
    def capacity(self) -> int:
        return self.layers[0].capacity


class CausalSelfAttention(Module):
    """GPT-2 multi-head self-attention: one fused QKV projection ``c_attn`` (C -> 3C), causal SDPA, ``c_proj``.

    Shapes: x (B, T, C) -> (B, T, C).
    """

    def __init__(self, n_embd: int, n_head: int, dropout: float, bias: bool, source: RandomSource, *,
                 rng: np.random.Generator, proj_std: float, dtype: Any) -> None:
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"n_embd={n_embd} must be divisible by n_head={n_head}")
        self.n_head, self.n_embd = n_head, n_embd
        self.c_attn = Conv1D(n_embd, 3 * n_embd, bias, rng=rng, dtype=dtype)
        self.c_proj = Conv1D(n_embd, n_embd, bias, rng=rng, std=proj_std, dtype=dtype)
        self.attn_dropout_p = dropout
        self.source = source
        self.resid_dropout = Dropout(dropout, source)

    def forward(self, x: Tensor, key_padding_mask: Any = None, cache: LayerCache | None = None,
                past_length: int = 0) -> Tensor:
        batch, length, width = x.shape
        head_dim = width // self.n_head
        # (B, T, 3C) -> (3, B, H, T, D): one projection, then views; no per-head Python loop.
        qkv = self.c_attn(x).reshape(batch, length, 3, self.n_head, head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if cache is not None:
            # Decoding (under no_grad): append this step's keys/values, attend over everything cached.
            end = past_length + length
            cache.keys[:, :, past_length:end] = k.data
            cache.values[:, :, past_length:end] = v.data
            k, v = Tensor(cache.keys[:, :, :end]), Tensor(cache.values[:, :, :end])
        dropout_p = self.attn_dropout_p if self.training else 0.0
        y = ops.scaled_dot_product_attention(q, k, v, causal=True, key_padding_mask=key_padding_mask,
                                             dropout_p=dropout_p, rng=self.source.generator if dropout_p else None)
        y = y.permute(0, 2, 1, 3).reshape(batch, length, width)
        return self.resid_dropout(self.c_proj(y))


class MLP(Module):
    """GPT-2's feed-forward block: ``c_fc`` (C -> 4C), GELU (tanh), ``c_proj`` (4C -> C), dropout."""

    def __init__(self, n_embd: int, dropout: float, bias: bool, source: RandomSource, *, rng: np.random.Generator,
                 proj_std: float, dtype: Any) -> None:
        super().__init__()
        self.c_fc = Conv1D(n_embd, 4 * n_embd, bias, rng=rng, dtype=dtype)
        self.c_proj = Conv1D(4 * n_embd, n_embd, bias, rng=rng, std=proj_std, dtype=dtype)
        self.dropout = Dropout(dropout, source)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.c_proj(ops.gelu(self.c_fc(x), approximate="tanh")))


class PreLNBlock(Module):
    """GPT-2 block, normalisation *before* each sub-layer:  x += attn(ln_1(x));  x += mlp(ln_2(x)).

    The residual stream itself is never normalised, which is what lets deep pre-LN stacks train without warmup
    tricks; the model adds one final LayerNorm (``ln_f``) instead.
    """

    def __init__(self, n_embd: int, n_head: int, dropout: float, bias: bool, eps: float, source: RandomSource, *,
                 rng: np.random.Generator, proj_std: float, dtype: Any) -> None:
        super().__init__()
        self.ln_1 = LayerNorm(n_embd, eps, bias, dtype=dtype)
        self.attn = CausalSelfAttention(n_embd, n_head, dropout, bias, source, rng=rng, proj_std=proj_std,
                                        dtype=dtype)
        self.ln_2 = LayerNorm(n_embd, eps, bias, dtype=dtype)
        self.mlp = MLP(n_embd, dropout, bias, source, rng=rng, proj_std=proj_std, dtype=dtype)

    def forward(self, x: Tensor, key_padding_mask: Any = None, cache: LayerCache | None = None,
                past_length: int = 0) -> Tensor:
        x = x + self.attn(self.ln_1(x), key_padding_mask, cache, past_length)
        return x + self.mlp(self.ln_2(x))


# ------------------------------------------------------------------------------------------ BERT (post-LN)
class BertSelfAttention(Module):
    """BERT's attention core: separate ``query``, ``key``, ``value`` projections (Linear layout), bidirectional SDPA.

    Shapes: x (B, T, C) -> context (B, T, C) (before the output projection).
    """

    def __init__(self, hidden: int, n_head: int, dropout: float, source: RandomSource, *, rng: np.random.Generator,
                 std: float, dtype: Any) -> None:
        super().__init__()
        if hidden % n_head:
            raise ValueError(f"hidden size {hidden} must be divisible by n_head={n_head}")
        self.n_head = n_head
        self.query = Linear(hidden, hidden, rng=rng, std=std, dtype=dtype)
        self.key = Linear(hidden, hidden, rng=rng, std=std, dtype=dtype)
        self.value = Linear(hidden, hidden, rng=rng, std=std, dtype=dtype)
        self.dropout_p = dropout
        self.source = source

    def _heads(self, x: Tensor, batch: int, length: int) -> Tensor:
        return x.reshape(batch, length, self.n_head, -1).permute(0, 2, 1, 3)

    def forward(self, x: Tensor, key_padding_mask: Any = None) -> Tensor:
        batch, length, width = x.shape
        q = self._heads(self.query(x), batch, length)
        k = self._heads(self.key(x), batch, length)
        v = self._heads(self.value(x), batch, length)
        dropout_p = self.dropout_p if self.training else 0.0
        y = ops.scaled_dot_product_attention(q, k, v, causal=False, key_padding_mask=key_padding_mask,
                                             dropout_p=dropout_p, rng=self.source.generator if dropout_p else None)
        return y.permute(0, 2, 1, 3).reshape(batch, length, width)


class BertAddNorm(Module):
    """Post-LN residual:  LayerNorm(residual + dropout(dense(x))).  (Hugging Face's BertSelfOutput / BertOutput.)"""

    def __init__(self, in_features: int, hidden: int, dropout: float, eps: float, source: RandomSource, *,
                 rng: np.random.Generator, std: float, dtype: Any) -> None:
        super().__init__()
        self.dense = Linear(in_features, hidden, rng=rng, std=std, dtype=dtype)
        self.LayerNorm = LayerNorm(hidden, eps, dtype=dtype)  # noqa: N815 - Hugging Face's parameter name
        self.dropout = Dropout(dropout, source)

    def forward(self, x: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(residual + self.dropout(self.dense(x)))


class BertAttention(Module):
    """Self-attention plus its post-LN residual (``attention.self``, ``attention.output``)."""

    def __init__(self, hidden: int, n_head: int, dropout: float, attention_dropout: float, eps: float,
                 source: RandomSource, *, rng: np.random.Generator, std: float, dtype: Any) -> None:
        super().__init__()
        self.self = BertSelfAttention(hidden, n_head, attention_dropout, source, rng=rng, std=std, dtype=dtype)
        self.output = BertAddNorm(hidden, hidden, dropout, eps, source, rng=rng, std=std, dtype=dtype)

    def forward(self, x: Tensor, key_padding_mask: Any = None) -> Tensor:
        return self.output(self.self(x, key_padding_mask), x)


class BertIntermediate(Module):
    """The first half of BERT's feed-forward block: ``dense`` (C -> intermediate) then GELU (exact, erf)."""

    def __init__(self, hidden: int, intermediate: int, *, rng: np.random.Generator, std: float, dtype: Any) -> None:
        super().__init__()
        self.dense = Linear(hidden, intermediate, rng=rng, std=std, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        return ops.gelu(self.dense(x), approximate="none")


class PostLNBlock(Module):
    """BERT block, normalisation *after* each residual add:  x = LN(x + attn(x));  x = LN(x + ffn(x))."""

    def __init__(self, hidden: int, n_head: int, intermediate: int, dropout: float, attention_dropout: float,
                 eps: float, source: RandomSource, *, rng: np.random.Generator, std: float, dtype: Any) -> None:
        super().__init__()
        self.attention = BertAttention(hidden, n_head, dropout, attention_dropout, eps, source, rng=rng, std=std,
                                       dtype=dtype)
        self.intermediate = BertIntermediate(hidden, intermediate, rng=rng, std=std, dtype=dtype)
        self.output = BertAddNorm(intermediate, hidden, dropout, eps, source, rng=rng, std=std, dtype=dtype)

    def forward(self, x: Tensor, key_padding_mask: Any = None) -> Tensor:
        x = self.attention(x, key_padding_mask)
        return self.output(self.intermediate(x), x)


def as_padding_mask(attention_mask: Any, like: Tensor) -> Any:
    """``attention_mask`` (B, T) of 1/0 or bool as an array on ``like``'s device, or None when absent."""
    if attention_mask is None:
        return None
    mask = attention_mask.data if isinstance(attention_mask, Tensor) else attention_mask
    return array_module(like.data).asarray(mask).astype(bool)
