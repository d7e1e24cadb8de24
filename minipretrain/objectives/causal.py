"""Causal language modelling (GPT): predict every next token from the tokens before it."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..ops.cross_entropy import IGNORE_INDEX
from .base import Objective, PreparedBatch


class CausalLanguageModeling(Objective):
    """Next-token prediction, the objective of GPT.

    A window of L = seq_len + 1 tokens x_0 … x_{L-1} yields seq_len training pairs at once:

        inputs  = x_0 … x_{L-2}        (``ids[:, :-1]``)
        labels  = x_1 … x_{L-1}        (``ids[:, 1:]``)
        L_CLM   = −(1/N) Σ_t log p(x_{t+1} | x_0 … x_t),

    the causal attention mask inside the model making position t see only x_0 … x_t. A pair counts only
    when both its input token and its target are real (attention mask True): padding is never predicted,
    and nothing is predicted from padding. Everything else — including end-of-document tokens — is a target.

    Args:
        model: a decoder model (``model.kind == "gpt"``).
        tokenizer: accepted for symmetry with :class:`MaskedLanguageModeling`; not needed, since padding is
            read from the batch's attention mask.
    """

    name = "clm"
    model_kind = "gpt"

    def __init__(self, model: Any, tokenizer: Any = None) -> None:
        super().__init__(model)
        self.tokenizer = tokenizer

    def prepare(self, batch: Any, rng: np.random.Generator | None = None) -> PreparedBatch:
        """Shift the window by one: inputs ``ids[:, :-1]``, labels ``ids[:, 1:]`` (-100 where padding is involved).

        ``rng`` is unused (the objective is deterministic) and accepted for the shared interface.
        """
        ids, attention_mask = self._check_batch(batch, min_length=2)
        # >>> exercise: clm-shift
        input_ids = ids[:, :-1].copy()
        input_mask = attention_mask[:, :-1].copy()
        has_target = input_mask & attention_mask[:, 1:]
        labels = np.where(has_target, ids[:, 1:], IGNORE_INDEX).astype(np.int64)
        # <<< exercise
        return PreparedBatch(input_ids=input_ids, attention_mask=input_mask, labels=labels)
