"""Pre-training objectives: what a model is asked to predict from unlabeled text.

- :class:`CausalLanguageModeling` ("clm", GPT): predict each next token.
- :class:`MaskedLanguageModeling` ("mlm", BERT): predict hidden tokens from both sides (80/10/10).
- :class:`SpanCorruption` ("span_corruption", T5): write back dropped spans, each after its sentinel.
- :class:`ReplacedTokenDetection` ("rtd", ELECTRA): tell original tokens from a generator's samples.

Each has ``prepare(batch, rng) -> PreparedBatch`` (host arrays, labels -100 where nothing is predicted)
and ``loss(model, prepared, reduction) -> (loss, metrics)``; :func:`token_weighted_loss` is how the two
combine into token-weighted gradient accumulation (the trainer's step and evaluation both run it).
"""
from __future__ import annotations

from typing import Any

from ..ops.cross_entropy import IGNORE_INDEX
from .accumulation import LossTotals, accumulate_gradients, token_weighted_loss
from .base import Objective, PreparedBatch
from .causal import CausalLanguageModeling
from .masked import MaskedLanguageModeling
from .replaced_token_detection import ReplacedTokenDetection
from .span_corruption import SpanCorruption

#: Objective classes by their short name (the ``objective=`` of configs and the dataset). A new objective is a
#: file of its own plus one line here.
OBJECTIVES: dict[str, type[Objective]] = {"clm": CausalLanguageModeling, "mlm": MaskedLanguageModeling,
                                          "span_corruption": SpanCorruption, "rtd": ReplacedTokenDetection}


def make_objective(name: str, model: Any, tokenizer: Any = None, **options: Any) -> Objective:
    """Build the objective called ``name`` (see ``OBJECTIVES``) for ``model``; ``options`` go to its constructor."""
    try:
        cls = OBJECTIVES[name]
    except KeyError:
        raise ValueError(f"unknown objective {name!r}; choose one of {sorted(OBJECTIVES)}") from None
    return cls.for_model(model, tokenizer, **options)


def tokenizer_for(name: str, tokenizer: Any, **options: Any) -> Any:
    """The tokenizer the objective called ``name`` trains with (``tokenizer``, or it plus span corruption's
    sentinels), given the ``[objective]`` options."""
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; choose one of {sorted(OBJECTIVES)}")
    return OBJECTIVES[name].tokenizer_for(tokenizer, **options)


def data_layout(name: str) -> str:
    """The dataset window layout ("clm" or "mlm") that the objective called ``name`` trains on."""
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; choose one of {sorted(OBJECTIVES)}")
    return OBJECTIVES[name].data_layout


def default_objective(model_kind: str) -> str:
    """The name of the first registered objective that trains models of ``model_kind`` ("gpt" -> "clm")."""
    for name, cls in OBJECTIVES.items():
        if cls.model_kind == model_kind:
            return name
    raise ValueError(f"no registered objective trains a {model_kind!r} model; objectives: {sorted(OBJECTIVES)}")


__all__ = [
    "IGNORE_INDEX", "LossTotals", "OBJECTIVES", "CausalLanguageModeling", "MaskedLanguageModeling", "Objective",
    "PreparedBatch", "ReplacedTokenDetection", "SpanCorruption", "accumulate_gradients", "data_layout",
    "default_objective", "make_objective", "token_weighted_loss", "tokenizer_for",
]
