"""What ``train`` prints at the end of a run whose objective shows its own examples (T5, ELECTRA): the metrics
it names (``shown_metrics``) on validation windows, and a few of its ``examples`` (a corrupted input with its
reconstruction; a sentence with the tokens the discriminator flags)."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd.grad_mode import no_grad


def validation_metrics(run: Any, batches: int = 4, batch_size: int = 16, seed: int = 1234) -> dict[str, float]:
    """The objective's metrics averaged over the first ``batches`` validation batches (fixed masks)."""
    was_training = run.model.training
    run.model.eval()
    totals: dict[str, list[float]] = {}
    try:
        with no_grad():
            for index, batch in enumerate(run.val_dataset.iter_eval_batches(batch_size)):
                if index >= batches:
                    break
                prepared = run.objective.prepare(batch, np.random.default_rng([seed, index]))
                _, metrics = run.objective.loss(run.model, prepared)
                for key, value in metrics.items():
                    totals.setdefault(key, []).append(value)
    finally:
        run.model.train(was_training)
    return {key: float(np.mean(values)) for key, values in totals.items()}


def show_examples(run: Any, seed: int = 0, count: int = 2) -> None:
    """Print the objective's ``shown_metrics`` and ``count`` of its ``examples`` from the validation split."""
    metrics = validation_metrics(run)
    for key, label in run.objective.shown_metrics:
        if key in metrics:
            print(f"{label}: {metrics[key]:.4f}")
    batch = run.val_dataset.get_batch(count, np.random.default_rng(seed))
    print(f"\n--- examples ({run.objective.examples_heading}) ---")
    for text in run.objective.examples(run.model, batch, count=count, seed=seed):
        print(text)
    print("--------------")
