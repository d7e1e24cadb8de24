"""The basic layers: Linear (and GPT-2's Conv1D layout of it), Embedding, LayerNorm, Dropout.

Every layer creates its Parameters from a seeded NumPy generator handed in by the model, so one seed fixes
every initial weight. Projections flatten the leading axes and run one 2-D matrix product: (B·T, in) @ (in, out)
is a single BLAS call, and its weight gradient xᵀ·dy is one more, where a 3-D (B, T, in) @ (in, out) would
broadcast and then have to sum B separate weight gradients.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import ops
from ..backend import array_module
from ..autograd.tensor import Tensor
from .module import Module, RandomSource
from .parameter import Parameter


def normal_parameter(shape: tuple[int, ...], std: float, rng: np.random.Generator, dtype: Any,
                     decay: bool = True) -> Parameter:
    """A Parameter drawn from N(0, std²) by ``rng``."""
    return Parameter(rng.normal(0.0, std, size=shape).astype(dtype), decay=decay)


def constant_parameter(shape: tuple[int, ...], value: float, dtype: Any) -> Parameter:
    """A Parameter filled with ``value``; never weight-decayed (biases, LayerNorm gains and shifts)."""
    return Parameter(np.full(shape, value, dtype=dtype), decay=False)


class Linear(Module):
    """y = x Wᵀ + b with W of shape (out, in): PyTorch's ``nn.Linear`` layout, used by BERT.

    Shapes: x (..., in) -> y (..., out).
    """

    weight_is_out_by_in = True

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, rng: np.random.Generator,
                 std: float = 0.02, dtype: Any = np.float32) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        shape = (out_features, in_features) if self.weight_is_out_by_in else (in_features, out_features)
        self.weight = normal_parameter(shape, std, rng, dtype)
        self.bias = constant_parameter((out_features,), 0.0, dtype) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        flat = x.reshape(-1, self.in_features) if x.ndim != 2 else x
        y = ops.matmul(flat, ops.transpose(self.weight) if self.weight_is_out_by_in else self.weight)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*x.shape[:-1], self.out_features) if x.ndim != 2 else y

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, bias={self.bias is not None}"


class Conv1D(Linear):
    """y = x W + b with W of shape (in, out): GPT-2's ``Conv1D`` layout (a Linear with the weight transposed).

    GPT-2 keeps this layout for historical reasons; we keep it too so checkpoints load without transposes.
    Shapes: x (..., in) -> y (..., out).
    """

    weight_is_out_by_in = False


class Embedding(Module):
    """A lookup table: ids (...) integers -> rows of ``weight`` (num_embeddings, dim), shape (..., dim)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, *, rng: np.random.Generator, std: float = 0.02,
                 dtype: Any = np.float32) -> None:
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = normal_parameter((num_embeddings, embedding_dim), std, rng, dtype, decay=False)

    def forward(self, ids: Any) -> Tensor:
        return ops.embedding(self.weight, ids)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


class LayerNorm(Module):
    """Layer normalisation over the last axis with a learned gain (``weight``) and shift (``bias``)."""

    def __init__(self, dim: int, eps: float = 1e-5, bias: bool = True, *, dtype: Any = np.float32) -> None:
        super().__init__()
        self.eps = eps
        self.weight = constant_parameter((dim,), 1.0, dtype)
        self.bias = constant_parameter((dim,), 0.0, dtype) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return ops.layer_norm(x, self.weight, self.bias, eps=self.eps)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"


class Dropout(Module):
    """Inverted dropout with probability ``p``, drawing from the model's ``RandomSource``; identity in eval mode."""

    def __init__(self, p: float, source: RandomSource) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = p
        self.source = source

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        return ops.dropout(x, self.p, self.source.generator, training=True)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def as_padding_mask(attention_mask: Any, like: Tensor) -> Any:
    """``attention_mask`` (B, T) of 1/0 or bool as an array on ``like``'s device, or None when absent."""
    if attention_mask is None:
        return None
    mask = attention_mask.data if isinstance(attention_mask, Tensor) else attention_mask
    return array_module(like.data).asarray(mask).astype(bool)
