"""Split one step's batch across ranks so that N ranks take exactly the step one process would take.

The global batch is ``gradient_accumulation_steps`` micro-batches of ``batch_size`` windows, drawn and
prepared (shifted for CLM, masked for MLM) by *every* rank from the same seeded generators, exactly as one
process draws them: cheap (index arithmetic and one random draw per position), and it keeps the generators
of all ranks in step, so the data order and the masks are the same whatever the rank count. Then

1. the step's windows are stacked and cut into ``world_size`` contiguous blocks (:func:`shard_bounds`; sizes
   differ by at most one when the window count is not divisible), and each rank takes its block in
   micro-batches of at most ``batch_size`` windows (so memory per rank is never more than one process's);
2. each rank back-propagates ``L_sum / N`` for its micro-batches, with N the targets of the *whole* step —
   known on every rank without communicating, since every rank prepared the whole step;
3. one all-reduce of the flat gradient buffer sums the shards:  Σ_r Σ_{i ∈ r} ∇L_sum,i / N = ∇(L_sum / N),
   the single-process gradient, however MLM's targets fall between the shards.

Only the order of floating-point additions differs from one process, so losses agree to ~1e-15 in float64.
(Dropout masks are drawn per rank from the model's generator, so with dropout > 0 the ranks' masks are not
one process's masks; the training recipes here use dropout 0.)
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, replace
from typing import Any

import numpy as np

from ..autograd.grad_mode import no_grad
from ..evaluation.perplexity import EVAL_MASK_SEED, EvalResult
from ..objectives.base import PreparedBatch
from .communicator import Communicator


def shard_bounds(num_items: int, world_size: int, rank: int) -> tuple[int, int]:
    """Rank ``rank``'s contiguous block ``[start, stop)`` of ``num_items``; the first ``num_items % world_size``
    ranks take one item more (e.g. 10 over 3 ranks: 4, 3, 3)."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"shard_bounds: rank {rank} is not one of world_size {world_size} ranks")
    base, extra = divmod(int(num_items), world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def stack_batches(batches: Sequence[PreparedBatch]) -> PreparedBatch:
    """One PreparedBatch holding the rows of ``batches`` in order (all of one window length)."""
    widths = {b.input_ids.shape[1] for b in batches}
    if len(widths) != 1:
        raise ValueError(f"stack_batches: the micro-batches have different window lengths {sorted(widths)}")
    stacked = {}
    for field in fields(PreparedBatch):
        parts = [getattr(b, field.name) for b in batches]
        stacked[field.name] = None if any(p is None for p in parts) else np.concatenate(parts, axis=0)
    return PreparedBatch(**stacked)


def take_rows(batch: PreparedBatch, start: int, stop: int) -> PreparedBatch:
    """Rows ``start:stop`` of every array of ``batch`` (views, no copy)."""
    return replace(batch, **{f.name: getattr(batch, f.name)[start:stop] for f in fields(PreparedBatch)
                             if getattr(batch, f.name) is not None})


def rank_micro_batches(prepared: Sequence[PreparedBatch], rank: int, world_size: int,
                       micro_batch_size: int | None = None) -> list[PreparedBatch]:
    """Rank ``rank``'s share of one step's windows, in micro-batches of at most ``micro_batch_size`` rows
    (default: the largest of ``prepared``). A rank may get none when there are fewer windows than ranks."""
    if not prepared:
        return []
    size = micro_batch_size or max(b.input_ids.shape[0] for b in prepared)
    whole = stack_batches(prepared)
    start, stop = shard_bounds(whole.input_ids.shape[0], world_size, rank)
    return [take_rows(whole, first, min(first + size, stop)) for first in range(start, stop, size)]


def data_parallel_gradients(objective: Any, model: Any, prepared: Sequence[PreparedBatch], comm: Communicator,
                            flat: Any, micro_batch_size: int | None = None,
                            stop_requested: bool = False) -> dict[str, Any]:
    """Leave the whole step's mean-loss gradient in ``flat.grad`` on every rank; return the step's metrics.

    Args:
        objective, model: as for ``objective.loss``.
        prepared: the step's prepared micro-batches, identical on every rank.
        comm: the communicator (one all-reduce of ``flat.grad``, one of the metric sums).
        flat: the model's :class:`~minipretrain.optim.flat.FlatParameters` (gradients zeroed before).
        micro_batch_size: most windows per forward pass (default: the step's micro-batch size).
        stop_requested: this rank was asked to stop (Ctrl-C). Sent with the metric sums, so that every rank
            learns in the same step that one was: a rank stopping alone would leave the others waiting in the
            next all-reduce.

    Returns:
        ``loss`` and ``accuracy`` over all N targets of the step, ``num_targets`` (N) and ``stop_requested``
        (True on every rank when any rank asked). When N = 0 no gradient is computed on any rank (every rank
        knows N) and the caller skips the update.
    """
    total_targets = sum(b.num_targets for b in prepared)
    if total_targets == 0:
        (stops,) = comm.allreduce_scalars(float(stop_requested))
        return {"loss": 0.0, "accuracy": 0.0, "num_targets": 0.0, "stop_requested": stops > 0}
    loss_sum, correct = 0.0, 0.0
    for batch in rank_micro_batches(prepared, comm.rank, comm.world_size, micro_batch_size):
        if batch.num_targets == 0:
            continue
        loss, metrics = objective.loss(model, batch, reduction="sum")
        (loss * (1.0 / total_targets)).backward()
        loss_sum += float(loss.item())
        correct += metrics["accuracy"] * metrics["num_targets"]
    flat.collect_grads()  # a rank without targets contributes zeros
    comm.allreduce_sum(flat.grad)
    loss_sum, correct, stops = comm.allreduce_scalars(loss_sum, correct, float(stop_requested))
    return {"loss": loss_sum / total_targets, "accuracy": correct / total_targets,
            "num_targets": float(total_targets), "stop_requested": stops > 0}


def evaluate_sharded(model: Any, dataset: Any, objective: Any, comm: Communicator, batch_size: int = 16,
                     max_batches: int | None = None, seed: int = EVAL_MASK_SEED) -> EvalResult:
    """:func:`~minipretrain.evaluation.evaluate` with the evaluation batches split across ranks.

    Batch i is scored by the rank whose :func:`shard_bounds` block holds i, with the masks of batch i
    (seeded by ``(seed, i)``, as ``evaluate``), and the sums of NLL, correct predictions and targets are
    all-reduced: every rank returns the one-process result (up to the order of additions).
    """
    num_batches = -(-dataset.num_eval_windows // batch_size)
    if max_batches is not None:
        num_batches = min(num_batches, max_batches)
    start, stop = shard_bounds(num_batches, comm.world_size, comm.rank)
    was_training = getattr(model, "training", False)
    model.eval()
    nll, correct, targets = 0.0, 0.0, 0
    try:
        with no_grad():
            for index, batch in enumerate(dataset.iter_eval_batches(batch_size)):
                if index >= stop:
                    break
                if index < start:
                    continue
                batch_prepared = objective.prepare(batch, np.random.default_rng([seed, index]))
                if batch_prepared.num_targets == 0:
                    continue
                loss, metrics = objective.loss(model, batch_prepared, reduction="sum")
                nll += float(loss.item())
                correct += metrics["accuracy"] * batch_prepared.num_targets
                targets += batch_prepared.num_targets
    finally:
        if was_training:
            model.train()
    nll, correct, total = comm.allreduce_scalars(nll, correct, targets)
    if total == 0:
        raise ValueError("evaluate: the evaluation split produced no targets (is it empty, or shorter than one window?)")
    mean = nll / total
    return EvalResult(loss=mean, perplexity=float(np.exp(min(mean, 700.0))), accuracy=correct / total,
                      num_targets=int(total))
