"""Data-parallel training: communicators (one process, MPI, NCCL) and the batch sharding that makes N ranks
take exactly one process's step.

    mpiexec -n 4 python -m minipretrain train --config configs/baby_gpt_char.toml

Each rank draws and prepares the whole step's batch from the shared seed, computes the summed loss and
gradient of its contiguous share, and one all-reduce of the flat gradient buffer
(:class:`~minipretrain.optim.flat.FlatParameters`) gives every rank the full batch's gradient.
"""
from .communicator import (
    CollectiveTimeoutError,
    Communicator,
    DistributedError,
    MPICommunicator,
    MPIUnavailableError,
    RankMismatchError,
    SingleProcessCommunicator,
    end_every_rank_on_error,
    fingerprint,
    import_mpi,
    init_communicator,
    is_main_process,
    launched_world_size,
)
from .sharding import rank_micro_batches, shard_bounds, stack_batches, take_rows

__all__ = [
    "CollectiveTimeoutError", "Communicator", "DistributedError", "MPICommunicator", "MPIUnavailableError",
    "RankMismatchError", "SingleProcessCommunicator", "end_every_rank_on_error", "fingerprint",
    "import_mpi", "is_main_process", "init_communicator", "launched_world_size", "rank_micro_batches", "shard_bounds",
    "stack_batches", "take_rows",
]
