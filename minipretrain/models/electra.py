"""ELECTRA (Clark et al. 2020): a small masked-LM *generator* fills in masked tokens, a *discriminator* tells for
every token whether it is the original or a replacement — as Hugging Face's ElectraForMaskedLM and
ElectraForPreTraining, sharing their token, position and segment embeddings as the paper does.

    ids ─ word ─┐
    positions ─ position ─┼─ + ─ LayerNorm ─ dropout ─ [embeddings_project E→H] ─ [BertLayer] × L ─ (B, T, H)
    segments ─ token_type ─┘          (embeddings of width E, shared by both models)

    generator:      ─ dense H→E ─ GELU ─ LayerNorm ─ @ wordᵀ + bias ─ MLM logits (B, T, V)
    discriminator:  ─ dense H→H ─ GELU ─ dense_prediction H→1 ─ one logit per token (B, T)

The encoder blocks are BERT's (post-LN, exact GELU). The embeddings have their own width E
(``embedding_size``) and a projection E→H when the encoder is wider; sharing them lets the generator be
narrower than the discriminator (the paper's generator is 1/4-1/2 of its width). After pre-training the
discriminator is the model to keep. Weights start at N(0, 0.02²), biases at 0.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from .. import ops
from ..autograd.tensor import Tensor
from ..backend import array_module
from ..nn import Dropout, Embedding, LayerNorm, Linear, Module, ModuleList, Parameter, RandomSource, as_padding_mask
from ..nn.layers import constant_parameter
from .accounting import count_parameters, training_flops_per_token
from .bert import BERTConfig, BertLayer


@dataclass
class ElectraConfig:
    """Shape of one ELECTRA model (generator or discriminator); Hugging Face's ElectraConfig fields.

    Attributes:
        vocab_size: V.
        embedding_size: width E of the (shared) embeddings.
        hidden_size, num_hidden_layers, num_attention_heads: encoder width H, depth L, heads.
        intermediate_size: feed-forward width (default 4·H).
        max_position_embeddings, type_vocab_size: positions and segments.
        dropout, attention_dropout: hidden and attention-probability dropout (ELECTRA: 0.1 each).
        layer_norm_eps: ε of every LayerNorm (1e-12).
        seed, dtype: initial weights and dropout; "float32" or "float64".
    """

    vocab_size: int
    embedding_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int | None = None
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    dropout: float = 0.1
    attention_dropout: float | None = None
    layer_norm_eps: float = 1e-12
    seed: int = 0
    dtype: str = "float32"

    def __post_init__(self) -> None:
        for name in ("vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "max_position_embeddings", "type_vocab_size"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"ElectraConfig.{name} must be positive, got {getattr(self, name)}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"ElectraConfig: hidden_size={self.hidden_size} must be divisible by "
                             f"num_attention_heads={self.num_attention_heads}")
        self.intermediate_size = 4 * self.hidden_size if self.intermediate_size is None else self.intermediate_size
        self.attention_dropout = self.dropout if self.attention_dropout is None else self.attention_dropout
        for name in ("dropout", "attention_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"ElectraConfig.{name} must be in [0, 1), got {getattr(self, name)}")
        np.dtype(self.dtype)

    @property
    def block_size(self) -> int:
        return self.max_position_embeddings

    def encoder_config(self) -> BERTConfig:
        """The shape of its encoder blocks, which are BERT's (``BertLayer``) at width H."""
        return BERTConfig(vocab_size=self.vocab_size, n_layer=self.num_hidden_layers, n_head=self.num_attention_heads,
                          n_embd=self.hidden_size, max_position_embeddings=self.max_position_embeddings,
                          type_vocab_size=self.type_vocab_size, intermediate_size=self.intermediate_size,
                          dropout=self.dropout, attention_dropout=self.attention_dropout,
                          layer_norm_eps=self.layer_norm_eps, seed=self.seed, dtype=self.dtype)


class ElectraEmbeddings(Module):
    """word + position + token_type embeddings of width E, LayerNorm, dropout (the part the two models share)."""

    def __init__(self, config: ElectraConfig, source: RandomSource, rng: np.random.Generator, dtype: Any) -> None:
        super().__init__()
        e = config.embedding_size
        self.word_embeddings = Embedding(config.vocab_size, e, rng=rng, dtype=dtype)
        self.position_embeddings = Embedding(config.max_position_embeddings, e, rng=rng, dtype=dtype)
        self.token_type_embeddings = Embedding(config.type_vocab_size, e, rng=rng, dtype=dtype)
        self.LayerNorm = LayerNorm(e, config.layer_norm_eps, dtype=dtype)  # noqa: N815 - HF name
        self.dropout = Dropout(config.dropout, source)

    def forward(self, ids: Any, token_type_ids: Any) -> Tensor:
        positions = array_module(ids).arange(ids.shape[1])
        x = self.word_embeddings(ids) + self.position_embeddings(positions) + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(x))


class ElectraEncoder(Module):
    """BERT's post-LN blocks (``encoder.layer.0`` ...; ``models/bert.py``'s ``BertLayer``)."""

    def __init__(self, config: ElectraConfig, source: RandomSource, rng: np.random.Generator, dtype: Any) -> None:
        super().__init__()
        blocks = config.encoder_config()
        self.layer = ModuleList([BertLayer(blocks, source, rng, dtype) for _ in range(config.num_hidden_layers)])

    def forward(self, x: Tensor, key_padding_mask: Any) -> Tensor:
        for block in self.layer:
            x = block(x, key_padding_mask)
        return x


class ElectraBody(Module):
    """Hugging Face's ``ElectraModel``: embeddings (maybe shared), the E→H projection when E ≠ H, the encoder."""

    def __init__(self, config: ElectraConfig, embeddings: ElectraEmbeddings | None, source: RandomSource,
                 rng: np.random.Generator, dtype: Any) -> None:
        super().__init__()
        if embeddings is not None and embeddings.word_embeddings.weight.shape != (config.vocab_size,
                                                                                  config.embedding_size):
            raise ValueError(f"ELECTRA: shared embeddings of shape {embeddings.word_embeddings.weight.shape} do not "
                             f"fit vocab_size={config.vocab_size}, embedding_size={config.embedding_size}")
        self.embeddings = embeddings if embeddings is not None else ElectraEmbeddings(config, source, rng, dtype)
        if config.embedding_size != config.hidden_size:
            self.embeddings_project = Linear(config.embedding_size, config.hidden_size, rng=rng, dtype=dtype)
        self.encoder = ElectraEncoder(config, source, rng, dtype)

    def forward(self, ids: Any, key_padding_mask: Any, token_type_ids: Any) -> Tensor:
        x = self.embeddings(ids, token_type_ids)
        if hasattr(self, "embeddings_project"):
            x = self.embeddings_project(x)
        return self.encoder(x, key_padding_mask)


class _ElectraModel(Module):
    """What the generator and the discriminator share: config, body, input checks, ``encode``."""

    def __init__(self, config: ElectraConfig, embeddings: ElectraEmbeddings | None, source: RandomSource | None,
                 rng: np.random.Generator | None) -> None:
        super().__init__()
        self.config = config
        self.dtype = np.dtype(config.dtype)
        self.rng = np.random.default_rng(config.seed) if rng is None else rng
        self.source = RandomSource(config.seed + 1) if source is None else source
        self.electra = ElectraBody(config, embeddings, self.source, self.rng, self.dtype)

    @property
    def block_size(self) -> int:
        return self.config.max_position_embeddings

    def embedding_parameters(self) -> list[Parameter]:
        e = self.electra.embeddings
        return [e.word_embeddings.weight, e.position_embeddings.weight, e.token_type_embeddings.weight]

    def reseed(self, seed: int | None = None) -> None:
        self.source.reseed(seed)

    def encode(self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None) -> Tensor:
        """Final hidden states (B, T, H); ``attention_mask`` 1 at real tokens, ``token_type_ids`` default 0."""
        xp = array_module(self.electra.embeddings.word_embeddings.weight.data)
        ids = xp.asarray(input_ids.data if isinstance(input_ids, Tensor) else input_ids)
        if ids.ndim != 2:
            raise ValueError(f"ELECTRA: input_ids must have shape (B, T), got {ids.shape}")
        if ids.shape[1] > self.config.max_position_embeddings:
            raise ValueError(f"ELECTRA: sequence of length {ids.shape[1]} is longer than max_position_embeddings="
                             f"{self.config.max_position_embeddings}")
        types = xp.zeros(ids.shape, dtype=np.int64) if token_type_ids is None else xp.asarray(
            token_type_ids.data if isinstance(token_type_ids, Tensor) else token_type_ids)
        if types.shape != ids.shape:
            raise ValueError(f"ELECTRA: token_type_ids {types.shape} must match input_ids {ids.shape}")
        hidden = self.electra.embeddings.word_embeddings.weight  # for the mask's device
        return self.electra(ids, as_padding_mask(attention_mask, hidden), types)

    def extra_repr(self) -> str:
        return f"{self.config}"


class ElectraGeneratorPredictions(Module):
    """dense H→E, GELU (erf), LayerNorm(E)."""

    def __init__(self, config: ElectraConfig, rng: np.random.Generator, dtype: Any) -> None:
        super().__init__()
        self.LayerNorm = LayerNorm(config.embedding_size, config.layer_norm_eps, dtype=dtype)  # noqa: N815
        self.dense = Linear(config.hidden_size, config.embedding_size, rng=rng, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        return self.LayerNorm(ops.gelu(self.dense(x), approximate="none"))


class TiedLMHead(Module):
    """E → V logits with the word-embedding matrix (tied) and a bias of its own (``generator_lm_head``)."""

    def __init__(self, weight: Parameter, dtype: Any) -> None:
        super().__init__()
        self.weight = weight
        self.bias = constant_parameter((weight.shape[0],), 0.0, dtype)

    def forward(self, x: Tensor) -> Tensor:
        batch, length, width = x.shape
        logits = ops.matmul(x.reshape(batch * length, width), ops.transpose(self.weight)) + self.bias
        return logits.reshape(batch, length, self.weight.shape[0])


class ElectraGenerator(_ElectraModel):
    """ElectraForMaskedLM: ``model(input_ids, attention_mask, token_type_ids)`` -> MLM logits (B, T, V).

    Pass ``embeddings`` (a discriminator's) to share them; ``source`` to share a dropout stream.
    """

    kind = "electra-generator"

    def __init__(self, config: ElectraConfig, embeddings: ElectraEmbeddings | None = None,
                 source: RandomSource | None = None, rng: np.random.Generator | None = None) -> None:
        super().__init__(config, embeddings, source, rng)
        self.generator_predictions = ElectraGeneratorPredictions(config, self.rng, self.dtype)
        self.generator_lm_head = TiedLMHead(self.electra.embeddings.word_embeddings.weight, self.dtype)

    def forward(self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None) -> Tensor:
        return self.generator_lm_head(self.generator_predictions(self.encode(input_ids, attention_mask,
                                                                             token_type_ids)))


class ElectraDiscriminatorPredictions(Module):
    """dense H→H, GELU (erf), dense_prediction H→1: one replaced-or-not logit per token."""

    def __init__(self, config: ElectraConfig, rng: np.random.Generator, dtype: Any) -> None:
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size, rng=rng, dtype=dtype)
        self.dense_prediction = Linear(config.hidden_size, 1, rng=rng, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        logits = self.dense_prediction(ops.gelu(self.dense(x), approximate="none"))
        return logits.reshape(*x.shape[:-1])


class ElectraDiscriminator(_ElectraModel):
    """ElectraForPreTraining: ``model(input_ids, attention_mask, token_type_ids)`` -> logits (B, T), > 0 meaning
    "replaced". ``encode`` gives the features probes read."""

    kind = "electra-discriminator"

    def __init__(self, config: ElectraConfig, embeddings: ElectraEmbeddings | None = None,
                 source: RandomSource | None = None, rng: np.random.Generator | None = None) -> None:
        super().__init__(config, embeddings, source, rng)
        self.discriminator_predictions = ElectraDiscriminatorPredictions(config, self.rng, self.dtype)

    def forward(self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None) -> Tensor:
        return self.discriminator_predictions(self.encode(input_ids, attention_mask, token_type_ids))


@dataclass
class ELECTRAConfig:
    """The pair: the discriminator's config and the generator's (same vocabulary, embedding size and positions)."""

    discriminator: ElectraConfig
    generator: ElectraConfig = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if isinstance(self.discriminator, dict):
            self.discriminator = ElectraConfig(**self.discriminator)
        if isinstance(self.generator, dict):
            self.generator = ElectraConfig(**self.generator)
        if self.generator is None:  # the paper's advice: a generator 1/4 as wide (at least one head of 16)
            d = self.discriminator
            width = max(d.hidden_size // 4, 16)
            heads = max(1, min(d.num_attention_heads, width // 16))
            self.generator = ElectraConfig(**{**asdict(d), "hidden_size": width, "num_attention_heads": heads,
                                              "intermediate_size": 4 * width})
        g, d = self.generator, self.discriminator
        for name in ("vocab_size", "embedding_size", "max_position_embeddings", "type_vocab_size", "dtype"):
            if getattr(g, name) != getattr(d, name):
                raise ValueError(f"ELECTRA: generator and discriminator share their embeddings, so their {name} must "
                                 f"agree (generator {getattr(g, name)!r}, discriminator {getattr(d, name)!r})")

    @property
    def block_size(self) -> int:
        return self.discriminator.max_position_embeddings


class ELECTRA(Module):
    """Generator and discriminator sharing embeddings and one dropout stream: what ``ReplacedTokenDetection``
    trains as one model (one optimizer, one checkpoint). Keep ``model.discriminator`` afterwards."""

    kind = "electra"

    def __init__(self, config: ELECTRAConfig) -> None:
        super().__init__()
        self.config = config
        d = config.discriminator
        rng = np.random.default_rng(d.seed)
        self.source = RandomSource(d.seed + 1)
        self.discriminator = ElectraDiscriminator(d, source=self.source, rng=rng)
        self.generator = ElectraGenerator(config.generator, embeddings=self.discriminator.electra.embeddings,
                                          source=self.source, rng=rng)

    @property
    def block_size(self) -> int:
        return self.config.block_size

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Both passes per token: each model's 6·(N_non_embedding + its tied V·E head) + 12·L·T·H."""
        seq_len = self.block_size if seq_len is None else seq_len
        d, g = self.config.discriminator, self.config.generator
        return (training_flops_per_token(count_parameters(self.discriminator), d.num_hidden_layers, seq_len,
                                         d.hidden_size)
                + training_flops_per_token(count_parameters(self.generator) + g.vocab_size * g.embedding_size,
                                           g.num_hidden_layers, seq_len, g.hidden_size))

    def embedding_parameters(self) -> list[Parameter]:
        return self.discriminator.embedding_parameters()

    def reseed(self, seed: int | None = None) -> None:
        self.source.reseed(seed)

    def forward(self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None) -> Tensor:
        """The discriminator's logits (B, T)."""
        return self.discriminator(input_ids, attention_mask, token_type_ids)

    def encode(self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None) -> Tensor:
        """The discriminator's hidden states (B, T, H): the features of the model ELECTRA keeps."""
        return self.discriminator.encode(input_ids, attention_mask, token_type_ids)


def electra_config_from_sizes(vocab_size: int, options: dict[str, Any]) -> ELECTRAConfig:
    """The pair for ``create_model("electra", ...)``: the shared sizes (``n_layer``, ``n_head``, ``n_embd``,
    ``block_size``) shape the discriminator, with embeddings of width ``n_embd``; the default generator is a
    quarter as wide (:class:`ELECTRAConfig`). Other options are ``ElectraConfig`` fields of both; those named
    ``generator_<field>`` go to the generator only (``generator_hidden_size=64``)."""
    options = dict(options)
    generator = {key.removeprefix("generator_"): options.pop(key) for key in list(options)
                 if key.startswith("generator_")}
    sizes = {"n_layer": "num_hidden_layers", "n_head": "num_attention_heads", "n_embd": "hidden_size",
             "block_size": "max_position_embeddings"}
    discriminator = {sizes.get(key, key): value for key, value in options.items()}
    discriminator.setdefault("embedding_size", discriminator.get("hidden_size"))
    known = {f.name for f in fields(ElectraConfig)} - {"vocab_size"}
    unknown = (set(discriminator) | set(generator)) - known
    if unknown:
        shared = {own: name for name, own in sizes.items()}
        raise ValueError(f"unknown electra model options {sorted(unknown)}; known: "
                         f"{sorted(shared.get(name, name) for name in known)} (generator_<field> for the generator)")
    config = ELECTRAConfig(discriminator=ElectraConfig(vocab_size=vocab_size, **discriminator))
    if generator:
        config = ELECTRAConfig(discriminator=config.discriminator,
                               generator=ElectraConfig(**{**asdict(config.generator), **generator}))
    return config
