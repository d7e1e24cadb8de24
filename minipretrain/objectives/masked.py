"""Masked language modelling (BERT): hide some tokens and predict them from both sides."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..ops.cross_entropy import IGNORE_INDEX
from .base import Objective, PreparedBatch


class MaskedLanguageModeling(Objective):
    """BERT's masked-LM objective with RoBERTa's dynamic masking (a fresh mask for every batch).

    For each real, non-special token x_t (never [CLS], [SEP], [PAD], [MASK], end-of-text, or any other
    reserved id) independently:

        selected with probability p = ``mask_prob``;  a selected token is then replaced by
            [MASK]                                   with probability q_mask   = ``mask_token_prob``,
            a token drawn uniformly from the non-special vocabulary   q_random = ``random_token_prob``,
            itself (left unchanged)                  with probability 1 − q_mask − q_random.

    Labels hold the original token at selected positions and -100 elsewhere, so the loss

        L_MLM = −(1/N) Σ_{t selected} log p(x_t | x̃),     N = number of selected tokens,

    scores only the selected positions. The random and unchanged cases keep the model from learning that
    only [MASK] positions matter (the token it sees at fine-tuning time is never [MASK]). BERT's defaults are
    p = 0.15 and 80/10/10. Everything is vectorised: two uniform draws per position (selection and kind of
    replacement) and one integer draw per random replacement.

    Args:
        model: an encoder model (``model.kind == "bert"``).
        tokenizer: gives ``vocab_size``, ``mask_id`` and ``special_ids``.
        mask_prob: p, the selection probability, in (0, 1] (0 would predict nothing).
        mask_token_prob: q_mask, in [0, 1].
        random_token_prob: q_random, in [0, 1], with q_mask + q_random ≤ 1.
        seed: seeds the objective's own generator, used when ``prepare`` is called without an ``rng``.
    """

    name = "mlm"
    model_kind = "bert"
    data_layout = "mlm"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        mask_prob: float = 0.15,
        mask_token_prob: float = 0.8,
        random_token_prob: float = 0.1,
        seed: int | None = 0,
    ) -> None:
        super().__init__(model)
        if not 0.0 < float(mask_prob) <= 1.0:
            raise ValueError(f"MaskedLanguageModeling: mask_prob must lie in (0, 1], got {mask_prob}: with none "
                             "selected nothing would be predicted (the loss is 0 and no parameter learns)")
        for label, value in (("mask_token_prob", mask_token_prob), ("random_token_prob", random_token_prob)):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"MaskedLanguageModeling: {label} must lie in [0, 1], got {value}")
        if mask_token_prob + random_token_prob > 1.0:
            raise ValueError(
                f"MaskedLanguageModeling: mask_token_prob + random_token_prob must be at most 1 (the rest stay "
                f"unchanged), got {mask_token_prob} + {random_token_prob} = {mask_token_prob + random_token_prob}"
            )
        if tokenizer is None:
            raise ValueError("MaskedLanguageModeling needs a tokenizer (for mask_id, vocab_size and special_ids)")
        self.tokenizer = tokenizer
        self.mask_prob = float(mask_prob)
        self.mask_token_prob = float(mask_token_prob)
        self.random_token_prob = float(random_token_prob)
        self.mask_id = int(tokenizer.mask_id)
        self.special_ids = np.array(sorted(int(i) for i in tokenizer.special_ids), dtype=np.int64)
        #: The ids a random replacement may take: the whole vocabulary minus every reserved id.
        self.replacement_ids = np.setdiff1d(np.arange(int(tokenizer.vocab_size), dtype=np.int64), self.special_ids)
        if self.random_token_prob > 0 and self.replacement_ids.size == 0:
            raise ValueError("MaskedLanguageModeling: the vocabulary has no non-special token to draw "
                             "random replacements from")
        self.rng = np.random.default_rng(seed)

    def prepare(self, batch: Any, rng: np.random.Generator | None = None) -> PreparedBatch:
        """Draw a fresh mask for ``batch`` (``[CLS] … [SEP]`` + padding) and build inputs and labels.

        Args:
            batch: has ``input_ids`` (B, L), ``attention_mask`` (B, L) and ``special_tokens_mask`` (B, L);
                it is not modified.
            rng: the generator to draw from; the objective's own (seeded) generator when None.
        """
        rng = self.rng if rng is None else rng
        original, attention_mask = self._check_batch(batch)
        special_mask = getattr(batch, "special_tokens_mask", None)
        special_mask = np.zeros(original.shape, bool) if special_mask is None else np.asarray(special_mask, bool)
        # The reserved ids are excluded even where the batch's special_tokens_mask forgot them (an
        # end-of-text inside a window, say): BERT never masks a special token.
        candidates = attention_mask & ~special_mask & ~np.isin(original, self.special_ids)

        input_ids, labels = self.mask_tokens(original, candidates, rng)
        token_type_ids = getattr(batch, "token_type_ids", None)
        token_type_ids = (np.zeros(original.shape, np.int64) if token_type_ids is None
                          else np.asarray(token_type_ids, dtype=np.int64))
        return PreparedBatch(input_ids=input_ids, attention_mask=attention_mask.copy(), labels=labels,
                             token_type_ids=token_type_ids)

    def mask_tokens(self, original: np.ndarray, candidates: np.ndarray,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """BERT's 80/10/10 corruption of ``original`` at the ``candidates`` positions: (input_ids, labels).

        ELECTRA's generator is masked the same way (``ReplacedTokenDetection`` calls this method), so the two
        objectives draw the same masks from the same generator.
        """
        # >>> exercise: mlm-masking
        selected = candidates & (rng.random(original.shape) < self.mask_prob)
        # One more uniform u per position decides what a selected token becomes:
        # u < q_mask → [MASK];  q_mask ≤ u < q_mask + q_random → random token;  otherwise unchanged.
        kind = rng.random(original.shape)
        to_mask = selected & (kind < self.mask_token_prob)
        to_random = selected & (kind >= self.mask_token_prob) & (kind < self.mask_token_prob + self.random_token_prob)

        input_ids = original.copy()
        input_ids[to_mask] = self.mask_id
        num_random = int(np.count_nonzero(to_random))
        if num_random:
            input_ids[to_random] = self.replacement_ids[rng.integers(0, self.replacement_ids.size, size=num_random)]
        labels = np.where(selected, original, IGNORE_INDEX).astype(np.int64)
        # <<< exercise
        return input_ids, labels

    def __repr__(self) -> str:
        return (f"MaskedLanguageModeling(mask_prob={self.mask_prob}, mask_token_prob={self.mask_token_prob}, "
                f"random_token_prob={self.random_token_prob})")
