"""The optimizer sharded over the ranks (ZeRO stage 1): each rank updates only its share of the parameters.

Data parallelism as :mod:`~minipretrain.distributed.sharding` describes it leaves every rank with the whole
step's gradient after one all-reduce, and then every rank runs the same AdamW update over every parameter:
W ranks doing identical work, about a tenth of a CPU step. Instead (Rajbhandari et al. 2020, "ZeRO", stage 1):

1. a *reduce-scatter* of the flat gradient buffer leaves on rank r the summed gradient of its block of
   parameters only (the blocks are cut at parameter boundaries, :func:`partition_parameters`, so each
   parameter's gradient norm is summed on one rank, in the single-process order);
2. the global gradient norm for clipping: each rank sums the squares of its own segments, the ranks add the
   vectors of per-segment sums (a few dozen numbers), and every rank adds them up in the same order;
3. each rank applies AdamW to its block alone (its moments live only there);
4. an *all-gather* of the parameter buffer gives every rank every updated parameter.

A reduce-scatter plus an all-gather move the same bytes as the all-reduce they replace (an all-reduce *is*
those two, inside MPI), and the arithmetic of each element is unchanged, so a sharded step equals the
replicated one bit for bit. Checkpoints gather the moments first (:meth:`OptimizerShard.gather_state`):
they hold the whole optimizer, whatever the rank count, as before.

:class:`ReplicatedUpdate` is the other way to update, with the same three calls (reduce the gradients,
clip, step): the trainer's step reads the same whichever one it holds. After a sharded step a rank's
gradient buffer is valid on its own block only; anything that reads every
``param.grad`` after the reduction (a per-layer gradient tracker) must turn sharding off
(``training.shard_optimizer = false``).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def partition_parameters(sizes: Sequence[int], world_size: int) -> list[range]:
    """Cut parameters 0..n-1 (of these sizes, in buffer order) into ``world_size`` consecutive blocks of
    nearly equal element counts: the cut after block r is the parameter boundary nearest (r+1)/W of the total
    (at or after the previous cut). A block may be empty when there are fewer parameters than ranks."""
    if world_size < 1:
        raise ValueError(f"partition_parameters: world_size must be at least 1, got {world_size}")
    boundaries = np.cumsum([0, *sizes])  # boundaries[i]: the elements before parameter i
    cuts = [0]
    for rank in range(1, world_size):
        target = boundaries[-1] * rank / world_size
        cuts.append(cuts[-1] + int(np.argmin(np.abs(boundaries[cuts[-1]:] - target))))
    cuts.append(len(sizes))
    return [range(start, stop) for start, stop in zip(cuts[:-1], cuts[1:])]


class ReplicatedUpdate:
    """Every rank updates every parameter after one all-reduce (one process, NCCL, ``shard_optimizer`` off).

    The same three calls as :class:`OptimizerShard`, so the trainer's step reads the same either way.
    """

    moments_partial = False  # every rank always holds the whole of AdamW's moments

    def __init__(self, optimizer: Any, comm: Any) -> None:
        self.optimizer, self.comm = optimizer, comm

    def reduce_gradients(self) -> None:
        """The whole gradient buffer becomes the sum over the ranks."""
        self.comm.allreduce_sum(self.optimizer.flat.grad)

    def clip_grad_norm(self, max_norm: float) -> float:
        return self.optimizer.flat.clip_grad_norm(max_norm)

    def step(self) -> None:
        self.optimizer.step()

    def gather_state(self) -> None:
        """Nothing to gather."""


class OptimizerShard:
    """This rank's share of a :class:`~minipretrain.optim.FlatAdamW` update, and the collectives around it.

    Args:
        optimizer: the FlatAdamW every rank built over the same model.
        comm: a communicator with ``reduce_scatter_sum`` and ``allgather_blocks`` (MPI, host buffers).
    """

    def __init__(self, optimizer: Any, comm: Any) -> None:
        self.optimizer, self.comm = optimizer, comm
        flat = optimizer.flat
        self.blocks = partition_parameters([s.stop - s.start for s in flat.slices], comm.world_size)
        self.owned = self.blocks[comm.rank]
        self.region = flat.region(self.owned)
        self.counts = [flat.region(block).stop - flat.region(block).start for block in self.blocks]
        self.moments_partial = False  # after a step, each rank holds only its block of AdamW's moments

    def reduce_gradients(self) -> None:
        """Step 1: this rank's block of the gradient buffer becomes the sum over the ranks."""
        self.comm.reduce_scatter_sum(self.optimizer.flat.grad, self.counts)

    def clip_grad_norm(self, max_norm: float) -> float:
        """Step 2: the global norm (every rank gets the same float), this block's gradients scaled."""
        return self.optimizer.flat.clip_grad_norm(max_norm, owned=self.owned, comm=self.comm)

    def step(self) -> None:
        """Steps 3 and 4: AdamW on this block, then every rank receives every block's parameters."""
        self.optimizer.step(region=self.region)
        self.comm.allgather_blocks(self.optimizer.flat.data, self.counts)
        self.moments_partial = True

    def gather_state(self) -> None:
        """Collective: every rank gets the whole of AdamW's two moments (before a checkpoint: it holds the
        whole state, whatever the rank count)."""
        if self.moments_partial:
            self.comm.allgather_blocks(self.optimizer.exp_avg, self.counts)
            self.comm.allgather_blocks(self.optimizer.exp_avg_sq, self.counts)
            self.moments_partial = False
