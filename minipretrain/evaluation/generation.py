"""Sampling text from a GPT, with or without a key/value cache.

Without a cache every new token re-runs the model over the whole (cropped) context: O(T) work per layer for
T tokens, O(T²) for a whole sample. With the cache each step feeds only the newest token and attends over the
keys and values kept from earlier steps. Both paths draw the same random numbers in the same order, so they
return the same tokens (tested).

Once the context outgrows ``block_size`` it is cropped to the last ``block_size`` tokens (as nanoGPT). The
positions of every kept token then shift by one, which invalidates cached keys; from that point the cached
path recomputes the cropped window each step, exactly as the uncached path does.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from ..backend import array_module, to_host
from ..errors import ModelKindError


def _next_token(logits: np.ndarray, temperature: float, top_k: int | None, rng: np.random.Generator) -> np.ndarray:
    """One id per row of ``logits`` (B, V): greedy at temperature 0, else a sample from softmax(logits / T)."""
    if temperature == 0.0:
        return logits.argmax(axis=-1)
    scaled = logits.astype(np.float64) / temperature
    if top_k is not None and top_k < scaled.shape[-1]:
        kth = np.partition(scaled, -top_k, axis=-1)[:, -top_k][:, None]
        scaled = np.where(scaled < kth, -np.inf, scaled)
    probs = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    # Inverse-CDF sampling with one uniform per row: the same draws whichever path computed the logits.
    uniforms = rng.random(len(probs))[:, None]
    chosen = (probs.cumsum(axis=-1) < uniforms).sum(axis=-1)
    return np.minimum(chosen, probs.shape[-1] - 1)


def generate(model: Any, prompt_ids: Any, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
             seed: int = 0, use_cache: bool = True) -> np.ndarray:
    """Continue ``prompt_ids`` by ``max_new_tokens`` tokens sampled from a GPT.

    Args:
        model: a ``GPT`` (anything with ``forward``, ``forward_cached``, ``new_cache`` and ``config.block_size``).
        prompt_ids: (T,) or (B, T) integer ids (NumPy, CuPy or Tensor); T ≥ 1.
        max_new_tokens: how many tokens to add.
        temperature: divides the logits; 0 picks the most likely token (greedy).
        top_k: sample only among the k most likely tokens (None: all).
        seed: seeds the sampling generator, so a call repeats exactly.
        use_cache: keep keys/values between steps (faster; same tokens).

    Returns:
        NumPy int64 ids of shape (T + max_new_tokens,) or (B, T + max_new_tokens): prompt then continuation.
        The model is put in eval mode for the call and restored afterwards.
    """
    if not hasattr(model, "new_cache"):
        raise ModelKindError(f"generate needs a causal model (GPT), which predicts the next token; a "
                             f"{getattr(model, 'kind', type(model).__name__)!r} model sees both sides of a masked "
                             "token: ask it with fill_mask(model, tokenizer, 'text with [MASK]') instead")
    if temperature < 0:
        raise ValueError(f"generate: temperature must be ≥ 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"generate: top_k must be ≥ 1 or None, got {top_k}")
    # to_host, not np.asarray: a CuPy prompt refuses implicit conversion (lists and NumPy pass through).
    ids = to_host(prompt_ids.data if isinstance(prompt_ids, Tensor) else prompt_ids).astype(np.int64)
    single = ids.ndim == 1
    ids = ids[None] if single else ids
    if ids.ndim != 2 or ids.shape[1] == 0:
        raise ValueError(f"generate: prompt_ids must have shape (T,) or (B, T) with T ≥ 1, got {ids.shape}")
    block_size = model.config.block_size
    rng = np.random.default_rng(seed)
    xp = array_module(next(iter(model.parameters())).data)
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            cache = None
            for _ in range(max_new_tokens):
                window = ids[:, -block_size:]
                if use_cache and ids.shape[1] <= block_size:
                    if cache is None:  # first step: run the whole prompt, filling the cache
                        cache = model.new_cache(len(ids))
                        logits = model.forward_cached(xp.asarray(window), cache)
                    else:  # later steps: only the newest token
                        logits = model.forward_cached(xp.asarray(ids[:, -1:]), cache)
                else:
                    logits = model(xp.asarray(window))
                last = to_host(logits.data[:, -1, :])
                ids = np.concatenate([ids, _next_token(last, temperature, top_k, rng)[:, None]], axis=1)
    finally:
        model.train(was_training)
    return ids[0] if single else ids
