"""How much context a causal model uses: the loss of every target, by its position in the window, optionally
with attention cut to the last ``w`` tokens.

A CLM window of T inputs gives T predictions; the one at position p has seen p + 1 tokens. Averaging the
loss over windows position by position shows how the prediction improves as the visible context grows
(:func:`target_losses` with the ordinary causal mask). Cutting attention to a band of ``w`` tokens
(``GPT.forward(..., attention_window=w)``) asks the other question, at every position: how good is the
trained model with only its last ``w`` tokens? Both read the same evaluation windows: the split's tokens
cut into non-overlapping windows of ``seq_len + 1`` (inputs ``ids[a : a + T]``, targets
``ids[a + 1 : a + T + 1]``, starts ``a = 0, T, 2T, ...``, a last partial window dropped so that every
position is scored the same number of times).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from ..backend import array_module, to_host
from ..ops import cross_entropy


def window_starts(num_tokens: int, seq_len: int) -> np.ndarray:
    """Starts of the non-overlapping evaluation windows of ``seq_len + 1`` tokens over ``num_tokens`` tokens."""
    if num_tokens < seq_len + 1:
        raise ValueError(f"{num_tokens} tokens are fewer than one window of seq_len + 1 = {seq_len + 1}")
    return np.arange(0, num_tokens - seq_len, seq_len, dtype=np.int64)


def target_windows(ids: Any, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets), each (num_windows, seq_len), of the evaluation windows of ``ids`` (or of any
    per-token array laid out like them: a reference model's per-token losses land beside the targets')."""
    tokens = np.asarray(ids)
    starts = window_starts(len(tokens), seq_len)
    inputs = tokens[starts[:, None] + np.arange(seq_len)[None, :]]
    return inputs, tokens[starts[:, None] + np.arange(1, seq_len + 1)[None, :]]


def target_losses(model: Any, ids: Any, seq_len: int, attention_window: int | None = None, batch_size: int = 64,
                  comm: Any = None) -> np.ndarray:
    """(num_windows, seq_len) float64: −log p(target) in nats at every position of every evaluation window.

    ``attention_window`` is passed to the model (None: the whole causal context). With a multi-rank ``comm``
    rank r scores batches r, r + W, ...; one sum over the ranks gives every rank the whole matrix.
    """
    inputs, targets = target_windows(np.asarray(ids, dtype=np.int64), seq_len)
    losses = np.zeros(inputs.shape, dtype=np.float64)
    rank, world_size = (0, 1) if comm is None else (comm.rank, comm.world_size)
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        with no_grad():
            for index, first in enumerate(range(0, len(inputs), batch_size)):
                if index % world_size != rank:
                    continue
                rows = slice(first, first + batch_size)
                logits = model(inputs[rows], attention_window=attention_window).data
                xp = array_module(logits)
                # float64: per-target losses are averaged over ~10^5 targets and then differenced
                per_target = cross_entropy(Tensor(logits.astype(xp.float64)), xp.asarray(targets[rows]),
                                           reduction="none")
                losses[rows] = to_host(per_target.data)
    finally:
        if was_training:
            model.train()
    if comm is not None and comm.world_size > 1:
        comm.allreduce_sum(losses)  # each rank filled its own rows; the others are zeros
    return losses
