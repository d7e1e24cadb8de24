"""Token-weighted loss over several prepared batches: the one loop that training and evaluation share.

With k micro-batches holding N_1 … N_k targets (N = Σ N_i), the full batch's mean loss is

    L = (1/N) Σ_i L_sum,i        so        ∇L = Σ_i ∇(L_sum,i / N).

Back-propagating ``L_sum,i / N`` for each micro-batch and letting the gradients add up in ``.grad`` gives
exactly the full batch's gradient. The tempting ``(1/k) Σ_i L_mean,i`` is right only when every N_i is
equal (causal LM without padding); with masked LM, where each micro-batch masks a different number of
tokens, it over-weights the tokens of sparsely masked micro-batches. Because N must be known before the
first backward, all micro-batches are prepared (masked) first — that is why ``prepare`` and ``loss`` are
separate steps of an :class:`~minipretrain.objectives.Objective`.

:func:`token_weighted_loss` is that loop; ``PreTrainer.train_step`` runs it with ``backward=True`` and
``minipretrain.evaluation.evaluate`` with ``backward=False`` (every target of a split counts once).

Data parallelism changes only which batches the loop visits. With ``world_size`` ranks, every rank holds the
same prepared step; rank r back-propagates ``L_sum,i / N`` (N still the whole step's targets) for its
contiguous block of the step's windows (:func:`~minipretrain.distributed.rank_micro_batches`), so the sum of
the ranks' gradients — one all-reduce — is the single-process gradient, and :meth:`LossTotals.summed_over`
adds their sums.

A loss with a term normalised by a count other than the targets (ELECTRA: 50 · Σ BCE / N_real) needs that count
for the whole step too, not per micro-batch: the loop asks :meth:`~minipretrain.objectives.Objective.step_statistics`
once, from every prepared batch of the step, and passes the answer to each ``loss`` call.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backend import array_module, to_host
from ..distributed.sharding import rank_micro_batches
from .base import Objective, PreparedBatch


@dataclass
class LossTotals:
    """Sums over the batches scored: Σ NLL (nats), Σ correct arg-max predictions, Σ targets, Σ input tokens.

    Means come only at the end (``loss``, ``accuracy``), so every target weighs the same.
    """

    loss_sum: float = 0.0
    correct: float = 0.0
    num_targets: int = 0
    num_tokens: int = 0

    @property
    def loss(self) -> float:
        """Mean NLL per target (0 when there is none)."""
        return self.loss_sum / max(self.num_targets, 1)

    @property
    def accuracy(self) -> float:
        return self.correct / max(self.num_targets, 1)

    def summed_over(self, comm: Any, *extra: float) -> tuple[LossTotals, tuple[float, ...]]:
        """These sums added over every rank of ``comm`` (and the sums of ``extra``), in one small all-reduce.

        With one process the values come back as they are (float64 holds the counts exactly)."""
        loss_sum, correct, targets, tokens, *rest = comm.allreduce_scalars(
            self.loss_sum, self.correct, self.num_targets, self.num_tokens, *extra)
        return LossTotals(loss_sum, correct, int(targets), int(tokens)), tuple(rest)


def token_weighted_loss(objective: Objective, model: Any, prepared: Iterable[PreparedBatch],
                        backward: bool = False, rank: int = 0, world_size: int = 1) -> LossTotals:
    """Score ``prepared`` batches so that every target counts once, however the batches split them.

    With ``backward=True`` (a training step) the batches are a sequence, N is counted first and each batch's
    ``L_sum,i / N`` is back-propagated: the parameters' ``.grad`` gain the full batch's mean-loss gradient
    (call ``zero_grad()`` before). Batches without a target add their tokens and nothing else (unless the
    objective has step statistics); if none has a target, no backward runs.

    With ``world_size > 1`` only rank ``rank``'s block of the windows is scored (in micro-batches no larger
    than the given ones), N is still counted over all of ``prepared``, and the totals are this rank's share:
    add them over the ranks with :meth:`LossTotals.summed_over`, and the gradients with one all-reduce.

    In a step (``backward`` or ``world_size > 1``) the objective's ``step_statistics`` of all of ``prepared``
    reach every ``loss`` call. Without a step (evaluation streaming batches) each batch is scored on its own.
    """
    step_statistics = None
    if backward or world_size > 1:
        prepared = list(prepared)
        scale = 1.0 / max(sum(p.num_targets for p in prepared), 1)
        step_statistics = objective.step_statistics(prepared)  # before sharding: the whole step's counts
    if world_size > 1:
        prepared = rank_micro_batches(prepared, rank, world_size)
    totals = LossTotals()
    sums = []  # (Σ NLL, Σ correct) of each batch, left on the model's device and read in one transfer below
    for batch in prepared:
        totals.num_tokens += int(batch.input_ids.size)
        if batch.num_targets == 0 and step_statistics is None:
            continue  # (a loss weighted by step statistics may score more than targets: ELECTRA's BCE)
        loss, metrics = objective.loss(model, batch, reduction="sum", host_metrics=False,
                                       step_statistics=step_statistics)
        if backward:
            (loss * scale).backward()
        sums.append((loss.data, metrics["correct"]))
        totals.num_targets += batch.num_targets
    totals.loss_sum, totals.correct = _read_sums(sums)
    return totals


def _read_sums(pairs: list[tuple[Any, Any]]) -> tuple[float, float]:
    """Σ loss and Σ correct over the batches, copied to the host in one transfer (one GPU sync, not two per
    batch: each read waits for the device to finish)."""
    if not pairs:
        return 0.0, 0.0
    xp = array_module(pairs[0][0])
    values = to_host(xp.stack([xp.asarray(v, dtype=xp.float64) for pair in pairs for v in pair])).tolist()
    return sum(values[0::2]), sum(values[1::2])  # added in batch order, as one float(loss.item()) per batch was


def accumulate_gradients(
    objective: Objective,
    model: Any,
    micro_batches: Sequence[Any],
    rng: np.random.Generator | None = None,
) -> dict[str, float]:
    """Prepare ``micro_batches`` (host data batches) with ``rng``, then :func:`token_weighted_loss` them with
    ``backward=True``: the full batch's mean-loss gradient is *added* to ``.grad``.

    Returns ``loss`` (mean over all targets), ``accuracy`` (over all targets) and ``num_targets`` (N).
    """
    totals = token_weighted_loss(objective, model, [objective.prepare(b, rng) for b in micro_batches],
                                 backward=True)
    return {"loss": totals.loss, "accuracy": totals.accuracy, "num_targets": float(totals.num_targets)}
