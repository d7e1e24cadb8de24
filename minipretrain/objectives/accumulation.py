"""Gradient accumulation that weights every target token equally, however the micro-batches split them.

With k micro-batches holding N_1 … N_k targets (N = Σ N_i), the full batch's mean loss is

    L = (1/N) Σ_i L_sum,i        so        ∇L = Σ_i ∇(L_sum,i / N).

Back-propagating ``L_sum,i / N`` for each micro-batch and letting the gradients add up in ``.grad`` gives
exactly the full batch's gradient. The tempting ``(1/k) Σ_i L_mean,i`` is right only when every N_i is
equal (causal LM without padding); with masked LM, where each micro-batch masks a different number of
tokens, it over-weights the tokens of sparsely masked micro-batches. Because N must be known before the
first backward, all micro-batches are prepared (masked) first — that is why ``prepare`` and ``loss`` are
separate steps of an :class:`~minipretrain.objectives.Objective`.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import Objective


def accumulate_gradients(
    objective: Objective,
    model: Any,
    micro_batches: Sequence[Any],
    rng: np.random.Generator | None = None,
) -> dict[str, float]:
    """Add the full batch's mean-loss gradient to the parameters' ``.grad``, one micro-batch at a time.

    Gradients are *added* (call ``optimizer.zero_grad()`` before). Micro-batches without any target
    contribute nothing; if no micro-batch has a target, no backward runs.

    Args:
        objective: the objective whose ``prepare`` and ``loss(reduction="sum")`` are used.
        model: the model being trained.
        micro_batches: data batches (host arrays), all prepared before the first backward.
        rng: passed to ``objective.prepare`` (the objective's own generator when None).

    Returns:
        ``loss`` (mean over all targets), ``accuracy`` (over all targets) and ``num_targets`` (N).
    """
    prepared = [objective.prepare(batch, rng) for batch in micro_batches]
    total_targets = sum(p.num_targets for p in prepared)
    loss_sum = 0.0
    correct = 0.0
    for batch in prepared:
        if batch.num_targets == 0:
            continue
        loss, metrics = objective.loss(model, batch, reduction="sum")
        (loss * (1.0 / total_targets)).backward()
        loss_sum += metrics["loss"] * metrics["num_targets"]
        correct += metrics["accuracy"] * metrics["num_targets"]
    denominator = max(total_targets, 1)
    return {"loss": loss_sum / denominator, "accuracy": correct / denominator, "num_targets": float(total_targets)}
