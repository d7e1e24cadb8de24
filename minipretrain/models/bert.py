"""BERT: the BERT architecture (Devlin et al. 2019) with its masked-language-model head, as Hugging Face's
BertForMaskedLM.

    ids ─ word ─┐
    positions ─ position ─┼─ + ─ LayerNorm ─ dropout ─ [BertLayer] × n_layer ─ hidden (B, T, C)   (encode)
    segments ─ token_type ─┘
    hidden ─ dense ─ GELU ─ LayerNorm ─ @ wordᵀ + bias ─ MLM logits (B, T, V)                     (forward)

Post-LN blocks (LayerNorm after each residual add), GELU in its exact erf form, and a decoder tied to the word
embedding. Every weight starts at N(0, 0.02²), biases at 0 (BERT's ``initializer_range``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .. import ops
from ..autograd.tensor import Tensor
from ..backend import array_module
from ..nn import Dropout, Embedding, LayerNorm, Linear, Module, ModuleList, Parameter, RandomSource, as_padding_mask
from ..nn.layers import constant_parameter
from .accounting import count_parameters, training_flops_per_token


@dataclass
class BERTConfig:
    """Shape and regularisation of a BERT.

    Attributes:
        vocab_size: number of token ids V.
        n_layer, n_head, n_embd: depth L, heads H, hidden width C (BERT's hidden_size).
        max_position_embeddings: longest sequence (learned positions).
        type_vocab_size: number of segment ids (2: sentence A and B).
        intermediate_size: width of the feed-forward block (default 4·C).
        dropout: hidden dropout (embeddings and residual branches); BERT used 0.1.
        attention_dropout: dropout on attention probabilities (default: ``dropout``).
        layer_norm_eps: ε of every LayerNorm (BERT: 1e-12).
        mlm_head: with the masked-LM head (``cls.*``, BertForMaskedLM); False for a bare encoder (BertModel,
            sentence-transformers), which has ``encode`` but no MLM logits.
        seed: fixes the initial weights and every dropout mask.
        dtype: "float32" or "float64".
    """

    vocab_size: int
    n_layer: int
    n_head: int
    n_embd: int
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    intermediate_size: int | None = None
    dropout: float = 0.1
    attention_dropout: float | None = None
    layer_norm_eps: float = 1e-12
    mlm_head: bool = True
    seed: int = 0
    dtype: str = "float32"

    def __post_init__(self) -> None:
        for name in ("vocab_size", "n_layer", "n_head", "n_embd", "max_position_embeddings", "type_vocab_size"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"BERTConfig.{name} must be positive, got {getattr(self, name)}")
        if self.n_embd % self.n_head:
            raise ValueError(f"BERTConfig: n_embd={self.n_embd} must be divisible by n_head={self.n_head}")
        if self.intermediate_size is None:
            self.intermediate_size = 4 * self.n_embd
        if self.attention_dropout is None:
            self.attention_dropout = self.dropout
        for name in ("dropout", "attention_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"BERTConfig.{name} must be in [0, 1), got {getattr(self, name)}")
        np.dtype(self.dtype)

    @property
    def block_size(self) -> int:
        """Longest sequence (the same as ``max_position_embeddings``; the name the data pipeline uses)."""
        return self.max_position_embeddings

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class BertEmbeddings(Module):
    """word + position + token_type embeddings, then LayerNorm and dropout."""

    def __init__(self, config: BERTConfig, source: RandomSource, rng: np.random.Generator, dtype: Any) -> None:
        super().__init__()
        self.word_embeddings = Embedding(config.vocab_size, config.n_embd, rng=rng, dtype=dtype)
        self.position_embeddings = Embedding(config.max_position_embeddings, config.n_embd, rng=rng, dtype=dtype)
        self.token_type_embeddings = Embedding(config.type_vocab_size, config.n_embd, rng=rng, dtype=dtype)
        self.LayerNorm = LayerNorm(config.n_embd, config.layer_norm_eps, dtype=dtype)  # noqa: N815 - HF name
        self.dropout = Dropout(config.dropout, source)

    def forward(self, ids: Any, token_type_ids: Any) -> Tensor:
        positions = np.arange(ids.shape[1])  # host: its range check is free
        x = self.word_embeddings(ids) + self.position_embeddings(positions) + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(Module):
    """BERT's attention core: separate ``query``, ``key``, ``value`` projections (Linear layout), bidirectional SDPA.

    Shapes: x (B, T, C) -> context (B, T, C) (before the output projection).
    """

    def __init__(self, config: BERTConfig, source: RandomSource, rng: np.random.Generator, dtype: Any) -> None:
        super().__init__()
        hidden = config.n_embd
        self.n_head = config.n_head
        self.query = Linear(hidden, hidden, rng=rng, std=0.02, dtype=dtype)
        self.key = Linear(hidden, hidden, rng=rng, std=0.02, dtype=dtype)
        self.value = Linear(hidden, hidden, rng=rng, std=0.02, dtype=dtype)
        self.dropout_p = config.attention_dropout
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

    def __init__(self, config: BERTConfig, in_features: int, source: RandomSource, rng: np.random.Generator,
                 dtype: Any) -> None:
        super().__init__()
        self.dense = Linear(in_features, config.n_embd, rng=rng, std=0.02, dtype=dtype)
        self.LayerNorm = LayerNorm(config.n_embd, config.layer_norm_eps, dtype=dtype)  # noqa: N815 - HF name
        self.dropout = Dropout(config.dropout, source)

    def forward(self, x: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(residual + self.dropout(self.dense(x)))


class BertAttention(Module):
    """Self-attention plus its post-LN residual (``attention.self``, ``attention.output``)."""

    def __init__(self, config: BERTConfig, source: RandomSource, rng: np.random.Generator, dtype: Any) -> None:
        super().__init__()
        self.self = BertSelfAttention(config, source, rng, dtype)
        self.output = BertAddNorm(config, config.n_embd, source, rng, dtype)

    def forward(self, x: Tensor, key_padding_mask: Any = None) -> Tensor:
        return self.output(self.self(x, key_padding_mask), x)


class BertIntermediate(Module):
    """The first half of BERT's feed-forward block: ``dense`` (C -> intermediate) then GELU (exact, erf)."""

    def __init__(self, config: BERTConfig, rng: np.random.Generator, dtype: Any) -> None:
        super().__init__()
        self.dense = Linear(config.n_embd, config.intermediate_size, rng=rng, std=0.02, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        return ops.gelu(self.dense(x), approximate="none")


class BertLayer(Module):
    """BERT block, normalisation *after* each residual add:  x = LN(x + attn(x));  x = LN(x + ffn(x))."""

    def __init__(self, config: BERTConfig, source: RandomSource, rng: np.random.Generator, dtype: Any) -> None:
        super().__init__()
        self.attention = BertAttention(config, source, rng, dtype)
        self.intermediate = BertIntermediate(config, rng, dtype)
        self.output = BertAddNorm(config, config.intermediate_size, source, rng, dtype)

    def forward(self, x: Tensor, key_padding_mask: Any = None) -> Tensor:
        x = self.attention(x, key_padding_mask)
        return self.output(self.intermediate(x), x)


class BertEncoder(Module):
    """The stack of post-LN blocks (``encoder.layer.0`` ...)."""

    def __init__(self, config: BERTConfig, source: RandomSource, rng: np.random.Generator, dtype: Any) -> None:
        super().__init__()
        self.layer = ModuleList([BertLayer(config, source, rng, dtype) for _ in range(config.n_layer)])

    def forward(self, x: Tensor, key_padding_mask: Any) -> Tensor:
        for block in self.layer:
            x = block(x, key_padding_mask)
        return x


class BertBody(Module):
    """Hugging Face's ``BertModel`` without the pooler: embeddings and encoder."""

    def __init__(self, config: BERTConfig, source: RandomSource, rng: np.random.Generator, dtype: Any) -> None:
        super().__init__()
        self.embeddings = BertEmbeddings(config, source, rng, dtype)
        self.encoder = BertEncoder(config, source, rng, dtype)


class BertPredictionTransform(Module):
    """dense (C -> C), GELU (erf), LayerNorm: the MLM head's own layer before the tied decoder."""

    def __init__(self, config: BERTConfig, rng: np.random.Generator, dtype: Any) -> None:
        super().__init__()
        self.dense = Linear(config.n_embd, config.n_embd, rng=rng, dtype=dtype)
        self.LayerNorm = LayerNorm(config.n_embd, config.layer_norm_eps, dtype=dtype)  # noqa: N815 - HF name

    def forward(self, x: Tensor) -> Tensor:
        return self.LayerNorm(ops.gelu(self.dense(x), approximate="none"))


class BertDecoder(Module):
    """Hidden -> vocabulary logits with the word-embedding matrix (tied) and the head's own bias (V,)."""

    def __init__(self, weight: Parameter, bias: Parameter) -> None:
        super().__init__()
        self.weight = weight
        self.bias = bias

    def forward(self, x: Tensor) -> Tensor:
        batch, length, width = x.shape
        logits = ops.matmul(x.reshape(batch * length, width), ops.transpose(self.weight)) + self.bias
        return logits.reshape(batch, length, self.weight.shape[0])


class BertLMPredictionHead(Module):
    """``cls.predictions``: transform then tied decoder. ``bias`` is registered here first (HF's name for it)."""

    def __init__(self, config: BERTConfig, word_embeddings: Parameter, rng: np.random.Generator, dtype: Any) -> None:
        super().__init__()
        self.bias = constant_parameter((config.vocab_size,), 0.0, dtype)
        self.transform = BertPredictionTransform(config, rng, dtype)
        self.decoder = BertDecoder(word_embeddings, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.transform(x))


class BertOnlyMLMHead(Module):
    """``cls``: holds ``predictions`` (the names match Hugging Face's BertForMaskedLM)."""

    def __init__(self, config: BERTConfig, word_embeddings: Parameter, rng: np.random.Generator, dtype: Any) -> None:
        super().__init__()
        self.predictions = BertLMPredictionHead(config, word_embeddings, rng, dtype)

    def forward(self, x: Tensor) -> Tensor:
        return self.predictions(x)


class BERT(Module):
    """A BERT encoder with its MLM head. ``model(input_ids)`` -> MLM logits (B, T, V); ``model.encode`` -> (B, T, C).

    With ``config.mlm_head=False`` it is the bare encoder (Hugging Face's ``BertModel``): ``encode`` only.

    Parameter names and layouts are Hugging Face's ``BertForMaskedLM`` ones
    (``bert.encoder.layer.0.attention.self.query.weight`` is (out, in), PyTorch's Linear layout).
    """

    kind = "bert"

    def __init__(self, config: BERTConfig) -> None:
        super().__init__()
        self.config = config
        dtype = np.dtype(config.dtype)
        rng = np.random.default_rng(config.seed)
        self.source = RandomSource(config.seed + 1)
        self.bert = BertBody(config, self.source, rng, dtype)
        self.cls = (BertOnlyMLMHead(config, self.bert.embeddings.word_embeddings.weight, rng, dtype)
                    if config.mlm_head else None)

    @property
    def block_size(self) -> int:
        return self.config.max_position_embeddings

    def embedding_parameters(self) -> list[Parameter]:
        """Word, position and token-type tables: left out of the 'non-embedding' count."""
        e = self.bert.embeddings
        return [e.word_embeddings.weight, e.position_embeddings.weight, e.token_type_embeddings.weight]

    def reseed(self, seed: int | None = None) -> None:
        """Restart the dropout stream (from ``seed``, default the config's)."""
        self.source.reseed(seed)

    def encode(self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None) -> Tensor:
        """Final hidden states (B, T, C) for ids (B, T): the features a linear probe reads.

        ``attention_mask`` (B, T): 1 for real tokens, 0 for padding (no position attends to padding).
        ``token_type_ids`` (B, T): segment ids, 0 by default.
        """
        # Host ids stay on the host: the embeddings check their range there (free), then move them.
        ids = input_ids.data if isinstance(input_ids, Tensor) else input_ids
        ids = ids if hasattr(ids, "ndim") else np.asarray(ids)
        if ids.ndim != 2:
            raise ValueError(f"BERT: input_ids must have shape (B, T), got {ids.shape}")
        if ids.shape[1] > self.config.max_position_embeddings:
            raise ValueError(f"BERT: sequence of length {ids.shape[1]} is longer than max_position_embeddings="
                             f"{self.config.max_position_embeddings}")
        if token_type_ids is None:
            token_type_ids = np.zeros(ids.shape, dtype=np.int64)
        else:
            token_type_ids = token_type_ids.data if isinstance(token_type_ids, Tensor) else token_type_ids
            token_type_ids = token_type_ids if hasattr(token_type_ids, "ndim") else np.asarray(token_type_ids)
            if token_type_ids.shape != ids.shape:
                raise ValueError(f"BERT: token_type_ids {token_type_ids.shape} must match input_ids {ids.shape}")
        x = self.bert.embeddings(ids, token_type_ids)
        return self.bert.encoder(x, as_padding_mask(attention_mask, x))

    def forward(self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None) -> Tensor:
        """MLM logits (B, T, V) at every position (the objective picks the masked ones)."""
        if self.cls is None:
            raise ValueError(
                "this BERT has no MLM head (mlm_head=False: e.g. loaded from a bare BertModel or sentence-transformers "
                "checkpoint, which holds no cls.predictions.* weights), so it gives no MLM logits; use "
                "model.encode(input_ids, attention_mask) for its hidden states"
            )
        return self.cls(self.encode(input_ids, attention_mask, token_type_ids))

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Forward + backward FLOPs per token: 6·(N_non_embedding + V·C) + 12·L·T·C (``training_flops_per_token``)."""
        c = self.config
        decoder = c.vocab_size * c.n_embd if c.mlm_head else 0  # the tied MLM decoder is a real matmul
        return training_flops_per_token(count_parameters(self) + decoder, c.n_layer,
                                        c.max_position_embeddings if seq_len is None else seq_len, c.n_embd)

    def extra_repr(self) -> str:
        return f"{self.config}"
