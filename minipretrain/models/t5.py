"""T5: the encoder-decoder of Raffel et al. (2020), v1.0 style, as Hugging Face's T5ForConditionalGeneration.

    input_ids ─ shared ─ dropout ─ [T5Block: self-attn, FF] × L ─ RMS norm ─ dropout ─ encoder states (B, S, C)
    decoder_input_ids ─ shared ─ dropout ─ [T5Block: causal self-attn, cross-attn, FF] × L ─ RMS norm ─ dropout
        ─ · C^-½ ─ @ sharedᵀ ─ logits (B, T, V)

What makes it T5 rather than BERT/GPT:
- **RMS norm** (no mean, no bias) *before* each sub-layer (pre-LN), plus one at the end of each stack.
- **No absolute positions.** Each stack's first layer owns a table (num_buckets, H) of learned scalars; the
  score of query i for key j gets the entry of bucket(j - i) for its head, and every layer of the stack reuses
  that same bias. Buckets are exact for small distances and logarithmic up to ``max_distance``
  (:func:`relative_position_buckets`); the encoder tells left from right, the decoder (causal) looks only back.
- **No 1/√d scaling of the scores**: T5's initialisation puts it into the query weights (std (C·d_kv)^-½).
- Linear layers without biases; ReLU (v1.0) or gated-GELU (``wi_0``/``wi_1``, tanh GELU) feed-forward.
- The LM head is the shared embedding, applied to the decoder's output scaled by C^-½ (the tied-embedding
  rescaling); the decoder starts from ``decoder_start_token_id`` (the pad id, as T5).
Parameter names are Hugging Face's, so a checkpoint loads by name.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import ops
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from ..backend import array_module
from ..nn import Dropout, Embedding, Linear, Module, ModuleList, RandomSource
from ..nn.layers import constant_parameter
from ..ops.biased_attention import biased_attention
from ..ops.cross_entropy import IGNORE_INDEX
from ..ops.rms_norm import rms_norm
from .accounting import count_parameters, training_flops_per_token

FEED_FORWARD_PROJ = ("relu", "gated-gelu")


@dataclass
class T5Config:
    """Shape and regularisation of a T5 (field names as Hugging Face's T5Config where they exist).

    Attributes:
        vocab_size: V, including the sentinels ``<extra_id_k>`` span corruption needs.
        d_model, num_layers, num_heads: width C, encoder depth L, heads H.
        d_kv: width of one head (default C / H); attention runs at H·d_kv, which may differ from C.
        d_ff: feed-forward width (default 4·C).
        num_decoder_layers: decoder depth (default L).
        relative_attention_num_buckets, relative_attention_max_distance: the position buckets (32, 128).
        dropout: T5's ``dropout_rate`` (embeddings, attention probabilities, feed-forward, residual branches).
        layer_norm_eps: ε of the RMS norms (1e-6).
        feed_forward_proj: "relu" (T5 v1.0) or "gated-gelu" (v1.1's feed-forward).
        pad_token_id, eos_token_id, decoder_start_token_id: T5 starts decoding from the pad id.
        max_length: longest sequence the data pipeline cuts (T5 itself has no position limit).
        seed, dtype: initial weights and dropout masks; "float32" or "float64".
    """

    vocab_size: int
    d_model: int
    num_layers: int
    num_heads: int
    d_kv: int | None = None
    d_ff: int | None = None
    num_decoder_layers: int | None = None
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    dropout: float = 0.0
    layer_norm_eps: float = 1e-6
    feed_forward_proj: str = "relu"
    pad_token_id: int = 0
    eos_token_id: int = 1
    decoder_start_token_id: int = 0
    max_length: int = 512
    seed: int = 0
    dtype: str = "float32"

    def __post_init__(self) -> None:
        for name in ("vocab_size", "d_model", "num_layers", "num_heads", "relative_attention_num_buckets",
                     "relative_attention_max_distance", "max_length"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"T5Config.{name} must be positive, got {getattr(self, name)}")
        if self.d_kv is None and self.d_model % self.num_heads:
            raise ValueError(f"T5Config: d_model={self.d_model} is not divisible by num_heads={self.num_heads}; "
                             "give d_kv explicitly")
        self.d_kv = self.d_model // self.num_heads if self.d_kv is None else self.d_kv
        self.d_ff = 4 * self.d_model if self.d_ff is None else self.d_ff
        self.num_decoder_layers = self.num_layers if self.num_decoder_layers is None else self.num_decoder_layers
        if self.feed_forward_proj not in FEED_FORWARD_PROJ:
            raise ValueError(f"T5Config.feed_forward_proj must be one of {FEED_FORWARD_PROJ}, "
                             f"got {self.feed_forward_proj!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"T5Config.dropout must be in [0, 1), got {self.dropout}")
        np.dtype(self.dtype)

    @property
    def block_size(self) -> int:
        return self.max_length  # the name the data pipeline and create_model use


def relative_position_buckets(query_length: int, key_length: int, bidirectional: bool, num_buckets: int = 32,
                              max_distance: int = 128, xp: Any = np) -> Any:
    """Bucket id (Tq, Tk) of each relative position j - i, exactly as Hugging Face's ``_relative_position_bucket``.

    Bidirectional (encoder): half the buckets for keys to the right (j > i), half for the rest. Causal
    (decoder): only n = max(i - j, 0) counts. Within a half of size N, distances below N/2 get a bucket each;
    larger ones share logarithmically wider buckets,  N/2 + ⌊log(n / (N/2)) / log(max_distance / (N/2)) ·
    (N - N/2)⌋, capped at N - 1. The logarithm is in float32, as Hugging Face's, so the boundaries agree.
    """
    relative = xp.arange(key_length)[None, :] - xp.arange(query_length)[:, None]
    buckets = xp.zeros_like(relative)
    if bidirectional:
        num_buckets //= 2
        buckets += (relative > 0) * num_buckets
        distance = xp.abs(relative)
    else:
        distance = -xp.minimum(relative, 0)
    max_exact = num_buckets // 2
    is_small = distance < max_exact
    with np.errstate(divide="ignore"):  # log(0) in the small-distance entries, which where() discards
        scaled = (xp.log(distance.astype(np.float32) / np.float32(max_exact))
                  / np.float32(math.log(max_distance / max_exact)) * np.float32(num_buckets - max_exact))
    large = max_exact + xp.where(is_small, 0, scaled).astype(np.int64)
    large = xp.minimum(large, num_buckets - 1)
    return buckets + xp.where(is_small, distance, large)


class T5LayerNorm(Module):
    """RMS norm with a learned gain and no bias (``ops.rms_norm``)."""

    def __init__(self, dim: int, eps: float, dtype: Any) -> None:
        super().__init__()
        self.eps = eps
        self.weight = constant_parameter((dim,), 1.0, dtype)

    def forward(self, x: Tensor) -> Tensor:
        return rms_norm(x, self.weight, eps=self.eps)


class T5Attention(Module):
    """Multi-head attention with q, k, v, o projections (no biases), no score scaling, and, in each stack's first
    layer, the relative-position bias table ``relative_attention_bias`` (num_buckets, H). Self-attention when
    ``states`` is None, cross-attention over ``states`` (encoder output) otherwise.
    """

    def __init__(self, config: T5Config, has_relative_attention_bias: bool, source: RandomSource,
                 rng: np.random.Generator, dtype: Any) -> None:
        super().__init__()
        c, inner = config, config.num_heads * config.d_kv
        self.n_heads, self.d_kv = c.num_heads, c.d_kv
        self.num_buckets, self.max_distance = c.relative_attention_num_buckets, c.relative_attention_max_distance
        self.q = Linear(c.d_model, inner, bias=False, rng=rng, std=(c.d_model * c.d_kv) ** -0.5, dtype=dtype)
        self.k = Linear(c.d_model, inner, bias=False, rng=rng, std=c.d_model ** -0.5, dtype=dtype)
        self.v = Linear(c.d_model, inner, bias=False, rng=rng, std=c.d_model ** -0.5, dtype=dtype)
        self.o = Linear(inner, c.d_model, bias=False, rng=rng, std=inner ** -0.5, dtype=dtype)
        self.relative_attention_bias = (Embedding(self.num_buckets, c.num_heads, rng=rng, std=c.d_model ** -0.5,
                                                  dtype=dtype) if has_relative_attention_bias else None)
        self.dropout_p = c.dropout
        self.source = source

    def position_bias(self, query_length: int, key_length: int, bidirectional: bool) -> Tensor:
        """The (1, H, Tq, Tk) bias: the table's rows gathered by bucket id (an embedding lookup, so its
        scatter-add backward sums the gradient of all pairs that share a bucket into that bucket's row)."""
        table = self.relative_attention_bias.weight
        buckets = relative_position_buckets(query_length, key_length, bidirectional, self.num_buckets,
                                            self.max_distance, array_module(table.data))
        values = ops.embedding(table, buckets)  # (Tq, Tk, H)
        return values.permute(2, 0, 1).reshape(1, self.n_heads, query_length, key_length)

    def _heads(self, x: Tensor) -> Tensor:
        batch, length, _ = x.shape
        return x.reshape(batch, length, self.n_heads, self.d_kv).permute(0, 2, 1, 3)

    def forward(self, x: Tensor, states: Tensor | None = None, bias: Tensor | None = None,
                key_padding_mask: Any = None, causal: bool = False) -> Tensor:
        batch, length, _ = x.shape
        source = x if states is None else states
        q, k, v = self._heads(self.q(x)), self._heads(self.k(source)), self._heads(self.v(source))
        dropout_p = self.dropout_p if self.training else 0.0
        y = biased_attention(q, k, v, bias, causal=causal, key_padding_mask=key_padding_mask, scale=1.0,
                             dropout_p=dropout_p, rng=self.source.generator if dropout_p else None)
        return self.o(y.permute(0, 2, 1, 3).reshape(batch, length, self.n_heads * self.d_kv))


class T5LayerSelfAttention(Module):
    """x + dropout(SelfAttention(layer_norm(x)))."""

    def __init__(self, config: T5Config, has_bias: bool, source: RandomSource, rng: np.random.Generator,
                 dtype: Any) -> None:
        super().__init__()
        self.SelfAttention = T5Attention(config, has_bias, source, rng, dtype)  # noqa: N815 - HF name
        self.layer_norm = T5LayerNorm(config.d_model, config.layer_norm_eps, dtype)
        self.dropout = Dropout(config.dropout, source)

    def forward(self, x: Tensor, bias: Tensor | None, key_padding_mask: Any, causal: bool) -> Tensor:
        return x + self.dropout(self.SelfAttention(self.layer_norm(x), None, bias, key_padding_mask, causal))


class T5LayerCrossAttention(Module):
    """x + dropout(EncDecAttention(layer_norm(x), encoder states)); no position bias, the encoder's padding mask."""

    def __init__(self, config: T5Config, source: RandomSource, rng: np.random.Generator, dtype: Any) -> None:
        super().__init__()
        self.EncDecAttention = T5Attention(config, False, source, rng, dtype)  # noqa: N815 - HF name
        self.layer_norm = T5LayerNorm(config.d_model, config.layer_norm_eps, dtype)
        self.dropout = Dropout(config.dropout, source)

    def forward(self, x: Tensor, states: Tensor, states_mask: Any) -> Tensor:
        return x + self.dropout(self.EncDecAttention(self.layer_norm(x), states, None, states_mask, False))


class T5DenseActDense(Module):
    """wo(dropout(act(wi x))) with ReLU, or wo(dropout(gelu(wi_0 x) ⊙ wi_1 x)) for gated-GELU (tanh GELU)."""

    def __init__(self, config: T5Config, source: RandomSource, rng: np.random.Generator, dtype: Any) -> None:
        super().__init__()
        self.gated = config.feed_forward_proj == "gated-gelu"
        std_in, std_out = config.d_model ** -0.5, config.d_ff ** -0.5
        if self.gated:
            self.wi_0 = Linear(config.d_model, config.d_ff, bias=False, rng=rng, std=std_in, dtype=dtype)
            self.wi_1 = Linear(config.d_model, config.d_ff, bias=False, rng=rng, std=std_in, dtype=dtype)
        else:
            self.wi = Linear(config.d_model, config.d_ff, bias=False, rng=rng, std=std_in, dtype=dtype)
        self.wo = Linear(config.d_ff, config.d_model, bias=False, rng=rng, std=std_out, dtype=dtype)
        self.dropout = Dropout(config.dropout, source)

    def forward(self, x: Tensor) -> Tensor:
        hidden = ops.gelu(self.wi_0(x), approximate="tanh") * self.wi_1(x) if self.gated else ops.relu(self.wi(x))
        return self.wo(self.dropout(hidden))


class T5LayerFF(Module):
    """x + dropout(DenseReluDense(layer_norm(x)))."""

    def __init__(self, config: T5Config, source: RandomSource, rng: np.random.Generator, dtype: Any) -> None:
        super().__init__()
        self.DenseReluDense = T5DenseActDense(config, source, rng, dtype)  # noqa: N815 - HF name
        self.layer_norm = T5LayerNorm(config.d_model, config.layer_norm_eps, dtype)
        self.dropout = Dropout(config.dropout, source)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.dropout(self.DenseReluDense(self.layer_norm(x)))


class T5Block(Module):
    """Encoder block: ``layer.0`` self-attention, ``layer.1`` FF. Decoder block: ``layer.0`` causal self-attention,
    ``layer.1`` cross-attention, ``layer.2`` FF."""

    def __init__(self, config: T5Config, is_decoder: bool, has_bias: bool, source: RandomSource,
                 rng: np.random.Generator, dtype: Any) -> None:
        super().__init__()
        self.is_decoder = is_decoder
        layers: list[Module] = [T5LayerSelfAttention(config, has_bias, source, rng, dtype)]
        if is_decoder:
            layers.append(T5LayerCrossAttention(config, source, rng, dtype))
        layers.append(T5LayerFF(config, source, rng, dtype))
        self.layer = ModuleList(layers)

    def forward(self, x: Tensor, bias: Tensor | None, mask: Any, states: Tensor | None = None,
                states_mask: Any = None) -> Tensor:
        x = self.layer[0](x, bias, mask, causal=self.is_decoder)
        if self.is_decoder:
            x = self.layer[1](x, states, states_mask)
        return self.layer[-1](x)


class T5Stack(Module):
    """The encoder or the decoder: the shared embedding, blocks (block 0 owns the position bias), final norm."""

    def __init__(self, config: T5Config, shared: Embedding, is_decoder: bool, source: RandomSource,
                 rng: np.random.Generator, dtype: Any) -> None:
        super().__init__()
        self.is_decoder = is_decoder
        self.embed_tokens = shared
        depth = config.num_decoder_layers if is_decoder else config.num_layers
        self.block = ModuleList([T5Block(config, is_decoder, i == 0, source, rng, dtype) for i in range(depth)])
        self.final_layer_norm = T5LayerNorm(config.d_model, config.layer_norm_eps, dtype)
        self.dropout = Dropout(config.dropout, source)

    def forward(self, ids: Any, mask: Any, states: Tensor | None = None, states_mask: Any = None) -> Tensor:
        x = self.dropout(self.embed_tokens(ids))
        length = ids.shape[1]
        # one bias for the whole stack, computed by the first layer's table (T5 shares it across layers)
        bias = self.block[0].layer[0].SelfAttention.position_bias(length, length, bidirectional=not self.is_decoder)
        for block in self.block:
            x = block(x, bias, mask, states, states_mask)
        return self.dropout(self.final_layer_norm(x))


def shift_right(labels: Any, decoder_start_token_id: int, pad_token_id: int) -> Any:
    """Decoder inputs from labels (B, T): ``[start, y_0, …, y_{T-2}]`` with -100 replaced by the pad id (teacher
    forcing: position t reads the target of t-1 and predicts y_t)."""
    xp = array_module(labels)
    shifted = xp.empty_like(labels)
    shifted[:, 0] = decoder_start_token_id
    shifted[:, 1:] = labels[:, :-1]
    shifted[shifted == IGNORE_INDEX] = pad_token_id
    return shifted


class T5(Module):
    """T5ForConditionalGeneration. ``model(input_ids, attention_mask, decoder_input_ids, decoder_attention_mask)``
    -> logits (B, T, V); ``encode`` -> encoder states (B, S, C)."""

    kind = "t5"

    def __init__(self, config: T5Config) -> None:
        super().__init__()
        self.config = config
        dtype = np.dtype(config.dtype)
        rng = np.random.default_rng(config.seed)
        self.source = RandomSource(config.seed + 1)
        self.shared = Embedding(config.vocab_size, config.d_model, rng=rng, std=1.0, dtype=dtype)
        self.encoder = T5Stack(config, self.shared, False, self.source, rng, dtype)
        self.decoder = T5Stack(config, self.shared, True, self.source, rng, dtype)

    @property
    def block_size(self) -> int:
        return self.config.max_length

    def embedding_parameters(self) -> list[Any]:
        return [self.shared.weight]  # the shared token table, left out of the non-embedding count

    def reseed(self, seed: int | None = None) -> None:
        self.source.reseed(seed)  # restart the dropout stream

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """6·(N_non_emb + V·C) + 12·(L_enc + 2·L_dec)·T·H·d_kv: an upper bound (the decoder reads fewer tokens)."""
        c = self.config
        return training_flops_per_token(count_parameters(self) + c.vocab_size * c.d_model,
                                        c.num_layers + 2 * c.num_decoder_layers,
                                        c.max_length if seq_len is None else seq_len, c.num_heads * c.d_kv)

    def _ids(self, ids: Any, what: str) -> Any:
        xp = array_module(self.shared.weight.data)
        ids = xp.asarray(ids.data if isinstance(ids, Tensor) else ids)
        if ids.ndim != 2 or ids.dtype.kind not in "iu":
            raise ValueError(f"T5: {what} must be integer ids of shape (B, T), got {ids.dtype} {ids.shape}")
        return ids

    def _mask(self, mask: Any, shape: tuple[int, ...], what: str) -> Any:
        if mask is None:
            return None
        xp = array_module(self.shared.weight.data)
        mask = xp.asarray(mask.data if isinstance(mask, Tensor) else mask).astype(bool)
        if tuple(mask.shape) != tuple(shape):
            raise ValueError(f"T5: {what} has shape {tuple(mask.shape)}, expected {tuple(shape)} (that of its ids)")
        return mask

    def encode(self, input_ids: Any, attention_mask: Any = None) -> Tensor:
        """The encoder's final states (B, S, C); ``attention_mask`` (B, S) is 1 at real tokens, 0 at padding."""
        ids = self._ids(input_ids, "input_ids")
        return self.encoder(ids, self._mask(attention_mask, ids.shape, "attention_mask"))

    def decode(self, decoder_input_ids: Any, states: Tensor, attention_mask: Any = None,
               decoder_attention_mask: Any = None) -> Tensor:
        """Logits (B, T, V) of the decoder over encoder ``states``."""
        ids = self._ids(decoder_input_ids, "decoder_input_ids")
        source_mask = self._mask(attention_mask, states.shape[:2], "attention_mask")
        hidden = self.decoder(ids, self._mask(decoder_attention_mask, ids.shape, "decoder_attention_mask"), states,
                              source_mask)
        batch, length, width = hidden.shape
        # the tied LM head reads the decoder's output scaled by C^-½ (Mesh TensorFlow's T5 does the same)
        scaled = hidden.reshape(batch * length, width) * (self.config.d_model ** -0.5)
        return ops.matmul(scaled, ops.transpose(self.shared.weight)).reshape(batch, length, self.config.vocab_size)

    def forward(self, input_ids: Any, attention_mask: Any = None, decoder_input_ids: Any = None,
                decoder_attention_mask: Any = None, labels: Any = None) -> Tensor:
        """Logits (B, T, V); ``decoder_input_ids`` default to ``shift_right(labels)``."""
        if decoder_input_ids is None:
            if labels is None:
                raise ValueError("T5: give decoder_input_ids, or labels to shift right into them")
            decoder_input_ids = shift_right(self._ids(labels, "labels"), self.config.decoder_start_token_id,
                                            self.config.pad_token_id)
        states = self.encode(input_ids, attention_mask)
        return self.decode(decoder_input_ids, states, attention_mask, decoder_attention_mask)

    def generate(self, input_ids: Any, attention_mask: Any = None, max_new_tokens: int = 20) -> np.ndarray:
        """Greedy decoding (B, ≤ max_new_tokens) from the start token until every row produced EOS; no KV cache
        (it re-runs the decoder over the prefix: fast enough for the short span targets it shows)."""
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                states = self.encode(input_ids, attention_mask)
                xp = array_module(states.data)
                out = xp.full((states.shape[0], 1), self.config.decoder_start_token_id, dtype=np.int64)
                done = xp.zeros(states.shape[0], dtype=bool)
                for _ in range(max_new_tokens):
                    logits = self.decode(out, states, attention_mask)
                    step = xp.argmax(logits.data[:, -1], axis=-1)
                    step = xp.where(done, self.config.pad_token_id, step)
                    out = xp.concatenate([out, step[:, None]], axis=1)
                    done |= step == self.config.eos_token_id
                    if bool(done.all()):
                        break
        finally:
            self.train(was_training)
        return out[:, 1:]
