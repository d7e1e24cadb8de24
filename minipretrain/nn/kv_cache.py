"""The key/value cache of a decoder: what attention has already computed for the tokens generated so far.

Generating token t+1 needs the keys and values of tokens 0 … t. Recomputing them costs a full forward per
new token; keeping them costs memory, 2 · n_layer · B · H · max_len · D numbers, preallocated once. Writing
new keys into a preallocated buffer (instead of concatenating) keeps each decoding step O(T) rather than
copying the whole cache every step.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd.tensor import Tensor


class LayerCache:
    """Keys and values of one attention layer for the tokens seen so far, preallocated (B, H, max_len, D)."""

    def __init__(self, keys: Any, values: Any) -> None:
        self.keys, self.values = keys, values

    @property
    def capacity(self) -> int:
        return self.keys.shape[2]

    def append(self, keys: Any, values: Any, past_length: int) -> tuple[Tensor, Tensor]:
        """Write this step's ``keys``/``values`` (B, H, T, D) after the ``past_length`` cached positions and
        return everything cached so far as (constant) Tensors to attend over."""
        end = past_length + keys.shape[2]
        self.keys[:, :, past_length:end] = keys
        self.values[:, :, past_length:end] = values
        return Tensor(self.keys[:, :, :end]), Tensor(self.values[:, :, :end])


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
