"""Split one step's batch across ranks so that N ranks take exactly the step one process would take.

The global batch is ``gradient_accumulation_steps`` micro-batches of ``batch_size`` windows, drawn and
prepared (shifted for CLM, masked for MLM) by *every* rank from the same seeded generators, exactly as one
process draws them: cheap (index arithmetic and one random draw per position), and it keeps the generators
of all ranks in step, so the data order and the masks are the same whatever the rank count. Then

1. the step's windows are stacked and cut into ``world_size`` contiguous blocks (:func:`shard_bounds`; sizes
   differ by at most one when the window count is not divisible), and each rank takes its block in
   micro-batches of at most ``batch_size`` windows (:func:`rank_micro_batches`; so memory per rank is never
   more than one process's);
2. each rank back-propagates ``L_sum / N`` for its micro-batches, with N the targets of the *whole* step —
   known on every rank without communicating, since every rank prepared the whole step (this is the one
   accumulation loop, :func:`~minipretrain.objectives.token_weighted_loss` with ``rank`` and ``world_size``);
3. one all-reduce of the flat gradient buffer sums the shards:  Σ_r Σ_{i ∈ r} ∇L_sum,i / N = ∇(L_sum / N),
   the single-process gradient, however MLM's targets fall between the shards (``PreTrainer.train_step``).

This module only cuts batches: it imports nothing from the rest of minipretrain, so the objectives' loop can
use it without an import circle.

Only the order of floating-point additions differs from one process, so losses agree to ~1e-15 in float64.
(Dropout masks are drawn per rank from the model's generator, so with dropout > 0 the ranks' masks are not
one process's masks; the training recipes here use dropout 0.)
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, replace
from typing import Any

import numpy as np


def shard_bounds(num_items: int, world_size: int, rank: int) -> tuple[int, int]:
    """Rank ``rank``'s contiguous block ``[start, stop)`` of ``num_items``; the first ``num_items % world_size``
    ranks take one item more (e.g. 10 over 3 ranks: 4, 3, 3)."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"shard_bounds: rank {rank} is not one of world_size {world_size} ranks")
    base, extra = divmod(int(num_items), world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def stack_batches(batches: Sequence[Any]) -> Any:
    """One batch (a :class:`~minipretrain.objectives.PreparedBatch`, or any dataclass of row-major arrays)
    holding the rows of ``batches`` in order (all of one window length)."""
    widths = {b.input_ids.shape[1] for b in batches}
    if len(widths) != 1:
        raise ValueError(f"stack_batches: the micro-batches have different window lengths {sorted(widths)}")
    stacked = {}
    for field in fields(batches[0]):
        parts = [getattr(b, field.name) for b in batches]
        stacked[field.name] = None if any(p is None for p in parts) else np.concatenate(parts, axis=0)
    return type(batches[0])(**stacked)


def take_rows(batch: Any, start: int, stop: int) -> Any:
    """Rows ``start:stop`` of every array of ``batch`` (views, no copy)."""
    return replace(batch, **{f.name: getattr(batch, f.name)[start:stop] for f in fields(batch)
                             if getattr(batch, f.name) is not None})


def rank_micro_batches(prepared: Sequence[Any], rank: int, world_size: int,
                       micro_batch_size: int | None = None) -> list[Any]:
    """Rank ``rank``'s share of one step's windows, in micro-batches of at most ``micro_batch_size`` rows
    (default: the largest of ``prepared``). A rank may get none when there are fewer windows than ranks."""
    if not prepared:
        return []
    size = micro_batch_size or max(b.input_ids.shape[0] for b in prepared)
    whole = stack_batches(prepared)
    start, stop = shard_bounds(whole.input_ids.shape[0], world_size, rank)
    return [take_rows(whole, first, min(first + size, stop)) for first in range(start, stop, size)]
