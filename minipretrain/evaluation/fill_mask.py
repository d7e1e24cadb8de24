"""Fill in ``[MASK]`` tokens with a BERT: the masked-language-model objective, used as a demo."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd.grad_mode import no_grad
from ..backend import to_host
from ..errors import InputError, ModelKindError

MASK_TOKEN = "[MASK]"


def fill_mask(model: Any, tokenizer: Any, text: str, top_k: int = 5) -> list[dict[str, Any]] | list[list[dict[str, Any]]]:
    """The ``top_k`` most likely tokens at each ``[MASK]`` of ``text``.

    The text is encoded with ``[MASK]`` kept as the mask id and wrapped in ``[CLS] ... [SEP]`` (as BERT saw
    its training sequences). The model runs in eval mode (restored afterwards).

    Returns:
        For one mask, a list of ``{"token": id, "token_str": str, "score": probability, "sequence": text}``,
        best first (Hugging Face's fill-mask pipeline format); for several masks, one such list per mask.

    Raises:
        ModelKindError: the model is causal (a GPT sees only the left context and predicts the next token).
        InputError: the text has no ``[MASK]`` or is longer than the model's positions.
    """
    if getattr(model, "kind", None) == "gpt" or hasattr(model, "new_cache"):
        raise ModelKindError(f"fill_mask needs a masked language model (BERT); a {getattr(model, 'kind', '?')!r} "
                             "model predicts only the next token: continue text with generate() instead")
    if top_k < 1:
        raise InputError(f"fill_mask: top_k must be ≥ 1, got {top_k}")
    body = list(tokenizer.encode(text, allowed_special={MASK_TOKEN}))
    ids = np.array([tokenizer.cls_id, *body, tokenizer.sep_id], dtype=np.int64)
    positions = np.flatnonzero(ids == tokenizer.mask_id)
    if len(positions) == 0:
        raise InputError(f"fill_mask: the text has no {MASK_TOKEN} token: {text!r}; put {MASK_TOKEN} where a token "
                         "should be predicted")
    if len(ids) > model.config.block_size:
        raise InputError(f"fill_mask: {len(ids)} tokens with [CLS]/[SEP] exceed the model's "
                         f"{model.config.block_size} positions: shorten the text")
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            logits = to_host(model(ids[None]).data[0, positions]).astype(np.float64)
    finally:
        model.train(was_training)
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    results = []
    for row, position in zip(probs, positions):
        best = np.argsort(-row, kind="stable")[:top_k]
        candidates = []
        for token_id in best:
            filled = body.copy()
            filled[position - 1] = int(token_id)  # -1: body has no [CLS]
            candidates.append({"token": int(token_id), "token_str": tokenizer.decode([int(token_id)]),
                               "score": float(row[token_id]), "sequence": tokenizer.decode(filled)})
        results.append(candidates)
    return results[0] if len(results) == 1 else results
