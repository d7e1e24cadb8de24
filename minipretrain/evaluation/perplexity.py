"""Evaluation over a whole split: token-weighted loss, perplexity, and (for MLM) masked-token accuracy."""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..autograd.grad_mode import no_grad
from ..errors import ModelKindError
from ..objectives.accumulation import token_weighted_loss

EVAL_MASK_SEED = 1234


@dataclass
class EvalResult:
    """Loss (mean NLL per target, nats), its perplexity exp(loss), accuracy, and how many targets were scored."""

    loss: float
    perplexity: float
    accuracy: float
    num_targets: int

    def as_dict(self, prefix: str = "val_") -> dict[str, float]:
        return {f"{prefix}loss": self.loss, f"{prefix}perplexity": self.perplexity,
                f"{prefix}accuracy": self.accuracy, f"{prefix}targets": self.num_targets}


def evaluate(model: Any, dataset: Any, objective: Any, batch_size: int = 16, max_batches: int | None = None,
             seed: int = EVAL_MASK_SEED, comm: Any = None) -> EvalResult:
    """Score ``objective`` on the evaluation windows of ``dataset`` (all of them unless ``max_batches``).

    Every target counts once: the loss is Σ NLL / Σ targets over the split, not a mean of batch means.
    MLM draws its masks from a generator seeded by ``(seed, batch index)``, so the same split always gets the
    same masks and two checkpoints are compared on identical questions.

    With a multi-rank ``comm`` (:mod:`minipretrain.distributed`) rank r scores batches r, r + W, r + 2W, ...
    with those same masks, and the sums are added over the ranks: every rank returns the whole split's result.
    """
    layout, expected = getattr(dataset, "objective", None), getattr(objective, "data_layout", None)
    if layout is not None and expected is not None and layout != expected:
        raise ModelKindError(f"evaluate: the dataset holds {layout!r} windows, but {type(objective).__name__} "
                             f"scores {expected!r} windows: build the dataset with objective={expected!r}")
    was_training = getattr(model, "training", False)
    model.eval()
    batches = dataset.iter_eval_batches(batch_size)
    if max_batches is not None:
        batches = itertools.islice(batches, max_batches)
    rank, world_size = (0, 1) if comm is None else (comm.rank, comm.world_size)
    try:
        with no_grad():
            prepared = (objective.prepare(batch, np.random.default_rng([seed, index]))
                        for index, batch in enumerate(batches) if index % world_size == rank)
            totals = token_weighted_loss(objective, model, prepared)
    finally:
        if was_training:
            model.train()
    if comm is not None:
        totals, _ = totals.summed_over(comm)
    if totals.num_targets == 0:
        raise ValueError("evaluate: the evaluation split produced no targets (is it empty, or shorter than one window?)")
    return EvalResult(loss=totals.loss, perplexity=math.exp(min(totals.loss, 700.0)), accuracy=totals.accuracy,
                      num_targets=totals.num_targets)


def evaluate_perplexity(model: Any, dataset: Any, batch_size: int = 16, max_batches: int | None = None) -> float:
    """exp of the token-weighted mean next-token NLL over the whole evaluation split of ``dataset`` (CLM models)."""
    from ..objectives import CausalLanguageModeling

    if getattr(model, "kind", "gpt") != "gpt":
        raise ModelKindError(
            "evaluate_perplexity scores next-token prediction, which needs a causal model (GPT); for a BERT model "
            "use minipretrain.evaluation.evaluate(model, dataset, MaskedLanguageModeling(...))"
        )
    return evaluate(model, dataset, CausalLanguageModeling(model), batch_size, max_batches).perplexity
