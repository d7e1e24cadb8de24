"""Pre-training objectives: what a model is asked to predict from unlabeled text.

- :class:`CausalLanguageModeling` ("clm", GPT): predict each next token.
- :class:`MaskedLanguageModeling` ("mlm", BERT): predict hidden tokens from both sides (80/10/10).

Each has ``prepare(batch, rng) -> PreparedBatch`` (host arrays, labels -100 where nothing is predicted)
and ``loss(model, prepared, reduction) -> (loss, metrics)``; :func:`accumulate_gradients` shows how the two
combine into token-weighted gradient accumulation.
"""
from __future__ import annotations

from typing import Any

from ..ops.cross_entropy import IGNORE_INDEX
from .accumulation import accumulate_gradients
from .base import Objective, PreparedBatch
from .causal import CausalLanguageModeling
from .masked import MaskedLanguageModeling

#: Objective classes by their short name (the ``objective=`` of configs and the dataset).
OBJECTIVES: dict[str, type[Objective]] = {"clm": CausalLanguageModeling, "mlm": MaskedLanguageModeling}


def make_objective(name: str, model: Any, tokenizer: Any = None, **options: Any) -> Objective:
    """Build the objective called ``name`` ("clm" or "mlm") for ``model``; ``options`` go to its constructor."""
    try:
        cls = OBJECTIVES[name]
    except KeyError:
        raise ValueError(f"unknown objective {name!r}; choose one of {sorted(OBJECTIVES)}") from None
    return cls(model, tokenizer, **options)


__all__ = [
    "IGNORE_INDEX", "OBJECTIVES", "CausalLanguageModeling", "MaskedLanguageModeling", "Objective", "PreparedBatch",
    "accumulate_gradients", "make_objective",
]
