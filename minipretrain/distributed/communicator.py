"""Communicators: what data-parallel training needs from its processes, and nothing more.

Data parallelism runs N copies of the same program (ranks). Each computes the gradient of its share of the
batch; one all-reduce (an element-wise sum across ranks, left on every rank) of the flat gradient buffer gives
each the whole batch's gradient, and every rank takes the same step. So a communicator offers:

* ``allreduce_sum(buffer)`` — in place, one contiguous array, one call (never one per parameter);
* ``allreduce_scalars(*values)`` — loss sums, target counts, metric sums, in one small call;
* ``broadcast(obj)``, ``broadcast_buffer(array)`` (rank 0's parameters to all), ``barrier()``, ``rank``, ``world_size``, ``is_main`` (rank 0 writes logs and checkpoints);
* ``check_agreement(config)`` — every rank must run the same configuration; a hash is compared across ranks.

:class:`SingleProcessCommunicator` (the default) does nothing: the sums over one rank are the values
themselves. :class:`MPICommunicator` speaks MPI through mpi4py; started by ``mpiexec -n N python -m
minipretrain train ...``. A rank that dies is noticed by MPI's process manager, which ends the others (MPICH's
``mpiexec`` within about a second); a rank that *hangs* is not, so ``timeout_s`` bounds every collective
(non-blocking ``Iallreduce`` polled against a deadline) and raises :class:`CollectiveTimeoutError`.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import traceback
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..backend import array_module, check_device, default_device, device_of, to_device
from ..errors import MinipretrainError

#: Environment variables that MPI launchers set in every process they start (MPICH/Hydra, Open MPI, PMIx).
LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")
LAUNCHER_RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK")
INSTALL_HINT = "pip install mpi4py mpich (or `make install`, which installs the `mpi` extra)"


class DistributedError(MinipretrainError, RuntimeError):
    """Data-parallel training cannot go on: MPI is missing, ranks disagree, or a rank stopped answering."""


class MPIUnavailableError(DistributedError):
    """mpi4py or the MPI library it needs cannot be loaded."""


class RankMismatchError(DistributedError):
    """The ranks were started with different configurations (their hashes differ)."""


class CollectiveTimeoutError(DistributedError):
    """A collective did not complete before its deadline: another rank hung or died."""


def fingerprint(value: Any) -> str:
    """sha256 of ``value`` as canonical JSON (sorted keys; tuples as lists; NumPy scalars as numbers)."""
    def default(item: Any) -> Any:
        if isinstance(item, np.generic):
            return item.item()
        if isinstance(item, (tuple, set)):
            return list(item)
        return str(item)

    text = json.dumps(value, sort_keys=True, default=default, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def launched_world_size(environ: Any = None) -> int | None:
    """The rank count an MPI launcher announced in the environment (``mpiexec -n N``), or None if not launched."""
    environ = os.environ if environ is None else environ
    for name in LAUNCHER_SIZE_VARIABLES:
        if environ.get(name, "").isdigit():
            return int(environ[name])
    return None


def is_main_process(environ: Any = None) -> bool:
    """False in the processes of rank 1, 2, ... that an MPI launcher started (known before MPI starts): what
    writes shared outputs (experiment pages, plots) checks this, so rank 0 alone writes them."""
    environ = os.environ if environ is None else environ
    ranks = [environ[name] for name in LAUNCHER_RANK_VARIABLES if environ.get(name, "").isdigit()]
    return not ranks or int(ranks[0]) == 0


def end_every_rank_on_error(comm: "Communicator", body: Any) -> int:
    """Run ``body()``; with several ranks, an exception on any one prints once and ends every rank (MPI_Abort)
    instead of leaving the others waiting forever in their next collective. One process: it propagates."""
    try:
        return int(body() or 0)
    except Exception as error:  # noqa: BLE001 - whatever it is, the other ranks must not hang
        if comm.world_size == 1:
            raise
        if isinstance(error, RankMismatchError) and not comm.is_main:
            time.sleep(10)  # every rank raises this one: rank 0 says it once and its abort ends this rank too
        # a user's mistake (MinipretrainError) is its one-line message, as in one process; anything else a traceback
        detail = "" if isinstance(error, (DistributedError, MinipretrainError)) else traceback.format_exc()
        print(f"{detail}minipretrain: rank {comm.rank} of {comm.world_size}: {type(error).__name__}: {error}",
              file=sys.stderr, flush=True)
        comm.abort(2)
        return 2


class Communicator:
    """One process: every collective is the identity. Base class of the multi-process communicators."""

    backend = "single"
    rank = 0
    world_size = 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the one rank that writes logs, checkpoints, progress bars and samples."""
        return self.rank == 0

    def allreduce_sum(self, buffer: Any) -> Any:
        """Replace ``buffer`` (a contiguous array) by its element-wise sum over all ranks; returns it."""
        _check_buffer(buffer)
        return buffer

    def allreduce_scalars(self, *values: float) -> tuple[float, ...]:
        """The sums over all ranks of a few numbers (in float64), in one collective."""
        return tuple(float(v) for v in values)

    #: Whether :meth:`reduce_scatter_sum` and :meth:`allgather_blocks` work here for several ranks (the
    #: sharded optimizer, :mod:`~minipretrain.distributed.optimizer_shard`, needs them).
    shards_optimizer = False

    def reduce_scatter_sum(self, buffer: Any, counts: Sequence[int]) -> Any:
        """Sum ``buffer`` over the ranks, keeping only rank r's block on rank r: the ``counts[r]`` elements
        after the first ``sum(counts[:r])``. The rest of ``buffer`` is left as it was. Returns ``buffer``."""
        _check_blocks(buffer, counts, self.world_size)
        self._one_rank_only("reduce_scatter_sum")
        return buffer

    def allgather_blocks(self, buffer: Any, counts: Sequence[int]) -> Any:
        """Every rank's block of ``buffer`` (as in :meth:`reduce_scatter_sum`) copied into every rank's
        ``buffer``, in place. Returns ``buffer``."""
        _check_blocks(buffer, counts, self.world_size)
        self._one_rank_only("allgather_blocks")
        return buffer

    def _one_rank_only(self, collective: str) -> None:
        if self.world_size > 1:  # a subclass without its own version: the identity would be wrong
            raise NotImplementedError(f"{type(self).__name__} has no {collective}; the sharded optimizer "
                                      "needs an MPI communicator (shards_optimizer is False here)")

    def broadcast(self, value: Any, root: int = 0) -> Any:
        """Rank ``root``'s ``value`` (any picklable object) on every rank."""
        return value

    def broadcast_buffer(self, buffer: Any, root: int = 0) -> Any:
        """Overwrite ``buffer`` (a contiguous array) with rank ``root``'s, in place (the parameters at the start,
        so every rank begins from identical weights even where two machines' libraries initialise differently)."""
        _check_buffer(buffer)
        return buffer

    def barrier(self) -> None:
        """Wait until every rank has reached this point."""

    def check_agreement(self, value: Any, what: str = "configuration") -> str:
        """Raise :class:`RankMismatchError` unless every rank passed an identical ``value``; returns its hash."""
        return fingerprint(value)

    def abort(self, code: int = 1) -> None:
        """End every rank of the job now (after an error on this one)."""
        raise SystemExit(code)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rank={self.rank}, world_size={self.world_size})"


class SingleProcessCommunicator(Communicator):
    """The default: training in one process, with no MPI anywhere."""


def import_mpi() -> Any:
    """``mpi4py.MPI``, or :class:`MPIUnavailableError` saying what to install."""
    try:
        import mpi4py  # noqa: PLC0415 - optional dependency
    except ImportError as error:
        raise MPIUnavailableError(f"data-parallel training needs mpi4py, which is not installed: {INSTALL_HINT}") \
            from error
    try:
        from mpi4py import MPI  # noqa: PLC0415 - loads the MPI library
    except (ImportError, RuntimeError) as error:
        raise MPIUnavailableError(
            f"mpi4py {mpi4py.__version__} is installed but cannot load an MPI library ({_first_line(error)}): "
            f"{INSTALL_HINT}; or point MPI4PY_LIBMPI at your system's libmpi"
        ) from error
    return MPI


class MPICommunicator(Communicator):
    """Collectives over MPI (mpi4py), on host NumPy buffers; CuPy buffers are staged through the host.

    Args:
        comm: an mpi4py communicator (default ``MPI.COMM_WORLD``).
        timeout_s: if set, every collective must finish within this many seconds, else
            :class:`CollectiveTimeoutError` (a hung rank); None waits as long as MPI does.
        poll_s: how long to sleep between tests of a pending collective when ``timeout_s`` is set.
    """

    backend = "mpi"

    def __init__(self, comm: Any = None, timeout_s: float | None = None, poll_s: float = 1e-4) -> None:
        self.MPI = import_mpi()
        self.comm = self.MPI.COMM_WORLD if comm is None else comm
        self.rank = int(self.comm.Get_rank())
        self.world_size = int(self.comm.Get_size())
        if timeout_s is not None and not timeout_s > 0:
            raise ValueError(f"MPICommunicator: timeout_s must be positive or None, got {timeout_s}")
        self.timeout_s = timeout_s
        self.poll_s = poll_s

    def allreduce_sum(self, buffer: Any) -> Any:
        _check_buffer(buffer)
        if array_module(buffer) is not np:  # no CUDA-aware MPI assumed: stage through the host
            host = np.ascontiguousarray(to_device(buffer, "cpu"))
            self._allreduce_host(host, "the gradient all-reduce")
            buffer[...] = to_device(host, device_of(buffer))
            return buffer
        self._allreduce_host(buffer, "the gradient all-reduce")
        return buffer

    def allreduce_scalars(self, *values: float) -> tuple[float, ...]:
        sums = np.array(values, dtype=np.float64)
        self._allreduce_host(sums, "a metric all-reduce")
        return tuple(float(v) for v in sums)

    shards_optimizer = True

    def reduce_scatter_sum(self, buffer: Any, counts: Sequence[int]) -> Any:
        _check_blocks(buffer, counts, self.world_size)
        start = sum(counts[:self.rank])
        mine = np.empty(counts[self.rank], dtype=buffer.dtype)
        if self.timeout_s is None:
            self.comm.Reduce_scatter(buffer, mine, list(counts), op=self.MPI.SUM)
        else:
            self._wait(self.comm.Ireduce_scatter(buffer, mine, list(counts), op=self.MPI.SUM),
                       "the gradient reduce-scatter")
        buffer[start:start + counts[self.rank]] = mine
        return buffer

    def allgather_blocks(self, buffer: Any, counts: Sequence[int]) -> Any:
        _check_blocks(buffer, counts, self.world_size)
        displacements = [sum(counts[:r]) for r in range(len(counts))]
        message = [buffer, (list(counts), displacements)]
        if self.timeout_s is None:
            self.comm.Allgatherv(self.MPI.IN_PLACE, message)
        else:
            self._wait(self.comm.Iallgatherv(self.MPI.IN_PLACE, message), "the parameter all-gather")
        return buffer

    def broadcast(self, value: Any, root: int = 0) -> Any:
        return self.comm.bcast(value, root=root)

    def broadcast_buffer(self, buffer: Any, root: int = 0) -> Any:
        _check_buffer(buffer)
        host = buffer if array_module(buffer) is np else np.ascontiguousarray(to_device(buffer, "cpu"))
        if self.timeout_s is None:
            self.comm.Bcast(host, root=root)
        else:
            self._wait(self.comm.Ibcast(host, root=root), "the parameter broadcast")
        if host is not buffer:
            buffer[...] = to_device(host, device_of(buffer))
        return buffer

    def barrier(self) -> None:
        if self.timeout_s is None:
            self.comm.Barrier()
        else:
            self._wait(self.comm.Ibarrier(), "a barrier")

    def check_agreement(self, value: Any, what: str = "configuration") -> str:
        mine = fingerprint(value)
        hashes = self.comm.allgather(mine)
        differing = [rank for rank, digest in enumerate(hashes) if digest != hashes[0]]
        if differing:
            raise RankMismatchError(
                f"the ranks disagree on the {what}: rank 0 has hash {hashes[0][:12]}, rank(s) {differing} have "
                f"{sorted({hashes[r][:12] for r in differing})}. Start every rank with the same command, config "
                "file and overrides (mpiexec -n N python -m minipretrain train --config ...)."
            )
        return mine

    def abort(self, code: int = 1) -> None:
        self.comm.Abort(code)

    # ----------------------------------------------------------------- internals
    def _allreduce_host(self, buffer: np.ndarray, what: str) -> None:
        if self.timeout_s is None:
            self.comm.Allreduce(self.MPI.IN_PLACE, buffer, op=self.MPI.SUM)
        else:
            self._wait(self.comm.Iallreduce(self.MPI.IN_PLACE, buffer, op=self.MPI.SUM), what)

    def _wait(self, request: Any, what: str) -> None:
        deadline = time.monotonic() + self.timeout_s
        while not request.Test():
            if time.monotonic() > deadline:
                raise CollectiveTimeoutError(
                    f"rank {self.rank} of {self.world_size}: {what} did not complete within {self.timeout_s:g} s; "
                    "another rank has hung or died. The run stops here; the last checkpoint written is intact."
                )
            time.sleep(self.poll_s)


def _check_buffer(buffer: Any) -> None:
    flags = getattr(buffer, "flags", None)
    if flags is None or not flags.c_contiguous:
        raise TypeError("allreduce_sum needs one contiguous array (the flat gradient buffer), "
                        f"got {type(buffer).__name__}{'' if flags is None else ' (not contiguous)'}")


def _check_blocks(buffer: Any, counts: Sequence[int], world_size: int) -> None:
    _check_buffer(buffer)
    if array_module(buffer) is not np:
        raise TypeError("reduce_scatter_sum/allgather_blocks work on host (NumPy) buffers; a GPU run keeps "
                        "the optimizer replicated (the all-reduce goes over NCCL)")
    if len(counts) != world_size or sum(counts) != buffer.size or min(counts) < 0:
        raise ValueError(f"blocks of {list(counts)} elements do not cut a buffer of {buffer.size} into "
                         f"{world_size} ranks' blocks")


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return " ".join(text[:2]) if text else type(error).__name__


#: Overrides what ``init_communicator("auto")`` picks: "mpi", "nccl" or "single" (e.g. MPI on a GPU run).
COMMUNICATOR_VARIABLE = "MINIPRETRAIN_COMMUNICATOR"
BACKENDS = ("auto", "single", "mpi", "nccl")


def init_communicator(backend: str = "auto", timeout_s: float | None = None,
                      device: str | None = None) -> Communicator:
    """The communicator for this process.

    ``"auto"``: one process unless an MPI launcher started more than one rank (``mpiexec -n N``); then NCCL when
    the model is on a CUDA device (``device``; default ``MINIPRETRAIN_DEVICE``), else MPI. The environment
    variable ``MINIPRETRAIN_COMMUNICATOR=mpi`` (or ``nccl``, ``single``) overrides that choice, e.g. to send
    GPU gradients through MPI on host copies where NCCL is missing. ``"mpi"`` / ``"nccl"`` / ``"single"`` as
    ``backend`` ask for that one explicitly.
    """
    if backend == "auto":
        backend = os.environ.get(COMMUNICATOR_VARIABLE, "").strip().lower() or "auto"
        if backend not in BACKENDS:
            raise ValueError(f"{COMMUNICATOR_VARIABLE}={backend!r} is not a communicator; choose one of {BACKENDS}")
    if backend not in BACKENDS:
        raise ValueError(f"unknown communicator backend {backend!r}; choose auto, single, mpi or nccl")
    if backend == "auto":
        size = launched_world_size()
        if size is None or size <= 1:
            return SingleProcessCommunicator()
        backend = "nccl" if check_device(device or default_device()) == "cuda" else "mpi"
    if backend == "single":
        return SingleProcessCommunicator()
    if backend == "mpi":
        return MPICommunicator(timeout_s=timeout_s)
    from .nccl import NCCLCommunicator  # noqa: PLC0415 - needs CuPy

    mpi = MPICommunicator(timeout_s=timeout_s)
    try:
        return NCCLCommunicator(mpi)
    except DistributedError as error:  # the other ranks may be waiting in the bootstrap's broadcast: end them
        if mpi.world_size == 1:
            raise
        print(f"minipretrain: rank {mpi.rank} of {mpi.world_size}: {error}", file=sys.stderr, flush=True)
        mpi.abort(2)
        raise
