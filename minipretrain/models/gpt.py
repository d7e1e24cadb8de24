"""GPT: the GPT-2 architecture (Radford et al. 2019), as nanoGPT and Hugging Face's GPT2LMHeadModel.

    ids (B, T) ─ wte ─┐
    positions ── wpe ─┴─ + ─ dropout ─ [Block] × n_layer ─ ln_f ─ @ wteᵀ ─ logits (B, T, V)

Learned absolute positions, pre-LN blocks, GELU (tanh approximation), a final LayerNorm, and the output
projection tied to the token embedding (one Parameter read twice). Weights start at N(0, 0.02²); the two
projections that write into the residual stream (``attn.c_proj`` and ``mlp.c_proj``) start at
N(0, (0.02/√(2·n_layer))²), so the stream's variance does not grow with depth (GPT-2 paper, §2.3).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .. import ops
from ..autograd.tensor import Tensor
from ..backend import array_module
from ..nn import Conv1D, Dropout, Embedding, KVCache, LayerNorm, Module, ModuleList, Parameter, RandomSource
from ..nn.kv_cache import LayerCache
from ..nn.layers import as_padding_mask
from .accounting import count_parameters, training_flops_per_token


@dataclass
class GPTConfig:
    """Shape and regularisation of a GPT.

    Attributes:
        vocab_size: number of token ids V.
        n_layer, n_head, n_embd: depth L, heads H, width C (C divisible by H).
        block_size: longest sequence (number of learned positions).
        dropout: on embeddings, attention probabilities and residual branches (0 for short pretraining runs).
        bias: biases in projections and LayerNorms (GPT-2: True).
        layer_norm_eps: ε of every LayerNorm.
        seed: fixes the initial weights and every dropout mask.
        dtype: "float32" or "float64" (float64 for gradient checks).
    """

    vocab_size: int
    n_layer: int
    n_head: int
    n_embd: int
    block_size: int
    dropout: float = 0.0
    bias: bool = True
    layer_norm_eps: float = 1e-5
    seed: int = 0
    dtype: str = "float32"

    def __post_init__(self) -> None:
        for name in ("vocab_size", "n_layer", "n_head", "n_embd", "block_size"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"GPTConfig.{name} must be positive, got {getattr(self, name)}")
        if self.n_embd % self.n_head:
            raise ValueError(f"GPTConfig: n_embd={self.n_embd} must be divisible by n_head={self.n_head}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GPTConfig.dropout must be in [0, 1), got {self.dropout}")
        np.dtype(self.dtype)  # fails early on a misspelt dtype

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def residual_projection_std(config: GPTConfig) -> float:
    """0.02/√(2·n_layer): the init of the two projections that write into the residual stream (GPT-2, §2.3)."""
    return 0.02 / math.sqrt(2 * config.n_layer)


class CausalSelfAttention(Module):
    """GPT-2 multi-head self-attention: one fused QKV projection ``c_attn`` (C -> 3C), causal SDPA, ``c_proj``.

    Shapes: x (B, T, C) -> (B, T, C); B batch, T length, C = n_embd, H heads, D = C / H.
    """

    def __init__(self, config: GPTConfig, source: RandomSource, rng: np.random.Generator) -> None:
        super().__init__()
        c, dtype = config, np.dtype(config.dtype)
        self.n_head, self.n_embd = c.n_head, c.n_embd
        self.c_attn = Conv1D(c.n_embd, 3 * c.n_embd, c.bias, rng=rng, dtype=dtype)
        self.c_proj = Conv1D(c.n_embd, c.n_embd, c.bias, rng=rng, std=residual_projection_std(c), dtype=dtype)
        self.attn_dropout_p = c.dropout
        self.source = source
        self.resid_dropout = Dropout(c.dropout, source)

    def forward(self, x: Tensor, key_padding_mask: Any = None, cache: LayerCache | None = None,
                past_length: int = 0, window: int | None = None) -> Tensor:
        batch, length, width = x.shape
        head_dim = width // self.n_head
        # (B, T, 3C) -> (3, B, H, T, D): one projection, then views; no per-head Python loop.
        qkv = self.c_attn(x).reshape(batch, length, 3, self.n_head, head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if cache is not None:
            # Decoding (under no_grad): append this step's keys/values, attend over everything cached.
            k, v = cache.append(k.data, v.data, past_length)
        dropout_p = self.attn_dropout_p if self.training else 0.0
        y = ops.scaled_dot_product_attention(q, k, v, causal=True, key_padding_mask=key_padding_mask,
                                             dropout_p=dropout_p, rng=self.source.generator if dropout_p else None,
                                             window=window)
        y = y.permute(0, 2, 1, 3).reshape(batch, length, width)
        return self.resid_dropout(self.c_proj(y))


class MLP(Module):
    """GPT-2's feed-forward block: ``c_fc`` (C -> 4C), GELU (tanh), ``c_proj`` (4C -> C), dropout."""

    def __init__(self, config: GPTConfig, source: RandomSource, rng: np.random.Generator) -> None:
        super().__init__()
        c, dtype = config, np.dtype(config.dtype)
        self.c_fc = Conv1D(c.n_embd, 4 * c.n_embd, c.bias, rng=rng, dtype=dtype)
        self.c_proj = Conv1D(4 * c.n_embd, c.n_embd, c.bias, rng=rng, std=residual_projection_std(c), dtype=dtype)
        self.dropout = Dropout(c.dropout, source)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.c_proj(ops.gelu(self.c_fc(x), approximate="tanh")))


class Block(Module):
    """GPT-2 block, normalisation *before* each sub-layer:  x += attn(ln_1(x));  x += mlp(ln_2(x)).

    The residual stream itself is never normalised, which is what lets deep pre-LN stacks train without warmup
    tricks; the model adds one final LayerNorm (``ln_f``) instead.
    """

    def __init__(self, config: GPTConfig, source: RandomSource, rng: np.random.Generator) -> None:
        super().__init__()
        dtype = np.dtype(config.dtype)
        self.ln_1 = LayerNorm(config.n_embd, config.layer_norm_eps, config.bias, dtype=dtype)
        self.attn = CausalSelfAttention(config, source, rng)
        self.ln_2 = LayerNorm(config.n_embd, config.layer_norm_eps, config.bias, dtype=dtype)
        self.mlp = MLP(config, source, rng)

    def forward(self, x: Tensor, key_padding_mask: Any = None, cache: LayerCache | None = None,
                past_length: int = 0, window: int | None = None) -> Tensor:
        x = x + self.attn(self.ln_1(x), key_padding_mask, cache, past_length, window)
        return x + self.mlp(self.ln_2(x))


class GPTTransformer(Module):
    """The body (Hugging Face's ``GPT2Model``): embeddings, blocks, final LayerNorm."""

    def __init__(self, config: GPTConfig, source: RandomSource, rng: np.random.Generator) -> None:
        super().__init__()
        dtype = np.dtype(config.dtype)
        self.wte = Embedding(config.vocab_size, config.n_embd, rng=rng, dtype=dtype)
        self.wpe = Embedding(config.block_size, config.n_embd, rng=rng, dtype=dtype)
        self.drop = Dropout(config.dropout, source)
        self.h = ModuleList([Block(config, source, rng) for _ in range(config.n_layer)])
        self.ln_f = LayerNorm(config.n_embd, config.layer_norm_eps, config.bias, dtype=dtype)


class LMHead(Module):
    """The output projection, holding the *same* Parameter as the token embedding (weight tying)."""

    def __init__(self, weight: Parameter) -> None:
        super().__init__()
        self.weight = weight

    def forward(self, hidden: Tensor) -> Tensor:
        batch, length, width = hidden.shape
        logits = ops.matmul(hidden.reshape(batch * length, width), ops.transpose(self.weight))
        return logits.reshape(batch, length, self.weight.shape[0])


class GPT(Module):
    """A GPT-2 language model. ``model(input_ids)`` -> next-token logits (B, T, V).

    Parameter names and layouts are Hugging Face's ``GPT2LMHeadModel`` ones (``transformer.h.0.attn.c_attn.weight``
    is (C, 3C), GPT-2's Conv1D layout), so ``minipretrain.interop`` moves checkpoints both ways unchanged.
    """

    kind = "gpt"

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        rng = np.random.default_rng(config.seed)
        self.source = RandomSource(config.seed + 1)  # dropout's stream, apart from the initialisation stream
        self.transformer = GPTTransformer(config, self.source, rng)
        self.lm_head = LMHead(self.transformer.wte.weight)

    @property
    def block_size(self) -> int:
        return self.config.block_size

    def embedding_parameters(self) -> list[Parameter]:
        """Token and position tables: what Kaplan et al. leave out of the 'non-embedding' count."""
        return [self.transformer.wte.weight, self.transformer.wpe.weight]

    def reseed(self, seed: int | None = None) -> None:
        """Restart the dropout stream (from ``seed``, default the config's)."""
        self.source.reseed(None if seed is None else seed)

    def _check_ids(self, input_ids: Any, past_length: int = 0) -> Any:
        ids = input_ids.data if isinstance(input_ids, Tensor) else input_ids
        # Host ids stay on the host: the embedding checks their range there (free), then moves them.
        ids = ids if hasattr(ids, "ndim") else np.asarray(ids)
        if ids.ndim != 2:
            raise ValueError(f"GPT: input_ids must have shape (B, T), got {ids.shape}")
        if past_length + ids.shape[1] > self.config.block_size:
            raise ValueError(
                f"GPT: sequence of length {past_length + ids.shape[1]} is longer than block_size="
                f"{self.config.block_size}; crop it (generate() keeps the last block_size tokens)"
            )
        return ids

    def encode(self, input_ids: Any, attention_mask: Any = None) -> Tensor:
        """The final hidden states (B, T, C) for probes, named as ``BERT.encode`` so either model can be probed."""
        return self.hidden_states(input_ids, attention_mask)

    def hidden_states(self, input_ids: Any, attention_mask: Any = None, cache: KVCache | None = None,
                      attention_window: int | None = None) -> Tensor:
        """The final hidden states after ``ln_f``, shape (B, T, C); ``attention_window`` as in :meth:`forward`."""
        past_length = cache.length if cache is not None else 0
        ids = self._check_ids(input_ids, past_length)
        body = self.transformer
        positions = np.arange(past_length, past_length + ids.shape[1])  # host: its range check is free
        x = body.drop(body.wte(ids) + body.wpe(positions))
        padding = as_padding_mask(attention_mask, x)
        for index, block in enumerate(body.h):
            layer_cache = cache.layers[index] if cache is not None else None
            x = block(x, padding, layer_cache, past_length, attention_window)
        if cache is not None:
            cache.length += ids.shape[1]
        return body.ln_f(x)

    def forward(self, input_ids: Any, attention_mask: Any = None, attention_window: int | None = None) -> Tensor:
        """Logits (B, T, V) for ids (B, T) (NumPy/CuPy array or Tensor of integers).

        ``attention_mask`` (B, T), 1 for real tokens and 0 for padding, stops every position from attending to
        padding (on top of the causal mask). Positions are 0..T-1 whatever the padding, as in GPT-2.

        ``attention_window`` (an evaluation-time probe of how much context the model uses) bands every layer's
        causal mask: position t attends only to positions t - w + 1 .. t. With one layer the prediction at t
        then depends on exactly those w tokens; with L layers the window compounds, to L·(w - 1) + 1 tokens.
        None (or w ≥ T) is the ordinary causal model.
        """
        return self.lm_head(self.hidden_states(input_ids, attention_mask, attention_window=attention_window))

    # ----------------------------------------------------------------- decoding with a cache
    def new_cache(self, batch: int, max_len: int | None = None) -> KVCache:
        """An empty key/value cache for ``batch`` sequences of up to ``max_len`` (default block_size) tokens."""
        c = self.config
        return KVCache(c.n_layer, batch, c.n_head, max_len or c.block_size, c.n_embd // c.n_head,
                       np.dtype(c.dtype), array_module(self.transformer.wte.weight.data))

    def forward_cached(self, input_ids: Any, cache: KVCache) -> Tensor:
        """Logits (B, T, V) of new tokens ``input_ids`` (B, T) that follow the ``cache.length`` cached ones.

        Use under ``no_grad()``: the cache holds plain arrays, so no gradient flows through past keys.
        """
        return self.lm_head(self.hidden_states(input_ids, None, cache))

    # ----------------------------------------------------------------- cost
    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Forward + backward model FLOPs per token at ``seq_len`` (default block_size): 6·N + 12·L·T·C with N
        the non-embedding parameters plus the tied output projection V·C (see ``training_flops_per_token``)."""
        c = self.config
        return training_flops_per_token(count_parameters(self) + c.vocab_size * c.n_embd, c.n_layer,
                                        c.block_size if seq_len is None else seq_len, c.n_embd)

    def extra_repr(self) -> str:
        return f"{self.config}"
