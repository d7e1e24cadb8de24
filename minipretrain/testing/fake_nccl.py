"""The fake device's ``cupy.cuda.nccl``: CuPy's NCCL binding with the collectives done on the host.

Only what CuPy's module has (``cupy/cuda/nccl.py`` re-exports ``cupy_backends/cuda/libs/nccl.pyx`` and its
``.pxd``; read from CuPy's source, as the NCCL library cannot load without a GPU, so it is not in
``cupy_names``): ``available``, ``get_unique_id`` (a tuple of 128 signed bytes), ``get_version``,
``get_build_version``, ``groupStart``/``groupEnd``, ``NcclError``, the ``NCCL_*`` constants with CuPy's values,
and ``NcclCommunicator(ndev, commId, rank)`` with ``allReduce``, ``bcast``, ``rank_id``, ``size``,
``device_id``, ``destroy``, ``abort``. Calls take device pointers (``array.data.ptr``) and a stream pointer, as
CuPy's do; the fake finds the array a pointer belongs to (``fake_array.array_at``).

One rank (``ndev == 1``) needs nothing else: an all-reduce over one rank is the identity. Several ranks started
by ``mpiexec`` run each collective as an MPI collective of ``COMM_WORLD`` on the host arrays behind the fake
device, so a multi-rank run on the fake device goes through :class:`~minipretrain.distributed.nccl.
NCCLCommunicator`'s code path (bootstrap, pointers, datatypes, in-place sums) with real cross-process sums.
What it cannot show: NCCL's own behaviour (rings, streams, GPU memory, speed).
"""
from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import numpy as np

from .fake_array import array_at

NCCL_UNIQUE_ID_BYTES = 128
#: CuPy's ``cpdef enum`` in nccl.pxd, values included
CONSTANTS = {
    "NCCL_SUM": 0, "NCCL_PROD": 1, "NCCL_MAX": 2, "NCCL_MIN": 3, "NCCL_AVG": 4,
    "NCCL_INT8": 0, "NCCL_CHAR": 0, "NCCL_UINT8": 1, "NCCL_INT32": 2, "NCCL_INT": 2, "NCCL_UINT32": 3,
    "NCCL_INT64": 4, "NCCL_UINT64": 5, "NCCL_FLOAT16": 6, "NCCL_HALF": 6, "NCCL_FLOAT32": 7, "NCCL_FLOAT": 7,
    "NCCL_FLOAT64": 8, "NCCL_DOUBLE": 8, "NCCL_BFLOAT16": 9,
}
_DTYPES = {0: np.int8, 1: np.uint8, 2: np.int32, 3: np.uint32, 4: np.int64, 5: np.uint64, 6: np.float16,
           7: np.float32, 8: np.float64}
FAKE_VERSION = 22800  # reported as NCCL 2.28 (both build and runtime)


class NcclError(RuntimeError):
    """NCCL's error, raised by the fake for what NCCL itself would refuse (CuPy's class name)."""

    def __init__(self, status: int, message: str = "") -> None:
        self.status = status
        super().__init__(f"NCCL_ERROR_INVALID_ARGUMENT: {message}" if message else f"NCCL error {status}")


def get_unique_id() -> tuple[int, ...]:
    return tuple(int(b) - 256 if b > 127 else int(b) for b in os.urandom(NCCL_UNIQUE_ID_BYTES))


def get_version() -> int:
    return FAKE_VERSION


def get_build_version() -> int:
    return FAKE_VERSION


def groupStart() -> None:  # noqa: N802 - CuPy's name
    """Group calls only batch launches in NCCL; each collective here completes when called."""


def groupEnd() -> None:  # noqa: N802 - CuPy's name
    """See :func:`groupStart`."""


class NcclCommunicator:
    """One rank of ``ndev``; with ``ndev > 1`` the ranks are those of ``mpiexec`` (MPI ``COMM_WORLD``)."""

    def __init__(self, ndev: int, commId: tuple, rank: int) -> None:  # noqa: N803 - CuPy's names
        if len(commId) != NCCL_UNIQUE_ID_BYTES:
            raise AssertionError  # CuPy asserts the id's length
        if not 0 <= rank < ndev:
            raise NcclError(4, f"rank {rank} is not one of {ndev} ranks")
        self._ndev, self._rank, self._mpi = int(ndev), int(rank), None
        if self._ndev > 1:
            from mpi4py import MPI  # noqa: PLC0415 - only for several ranks

            world = MPI.COMM_WORLD
            if world.Get_size() != self._ndev or world.Get_rank() != self._rank:
                raise NcclError(4, f"the fake routes NCCL through MPI COMM_WORLD (rank {world.Get_rank()} of "
                                   f"{world.Get_size()}), but was asked for rank {rank} of {ndev}")
            ids = world.allgather(tuple(commId))
            if any(other != ids[0] for other in ids):
                raise NcclError(4, "the ranks passed different unique ids: broadcast rank 0's get_unique_id()")
            self._mpi = (MPI, world)
        self._open = True

    @staticmethod
    def _memory(pointer: int, count: int, datatype: int) -> np.ndarray:
        if datatype not in _DTYPES:
            raise NcclError(4, f"unknown datatype {datatype}")
        return array_at(pointer, count, _DTYPES[datatype])

    def _check_open(self) -> None:
        if not self._open:
            raise NcclError(4, "the communicator was destroyed")

    def allReduce(self, sendbuf: int, recvbuf: int, count: int, datatype: int, op: int,  # noqa: N802
                  stream: int) -> None:
        self._check_open()
        if op != CONSTANTS["NCCL_SUM"]:
            raise NcclError(4, "the fake implements NCCL_SUM only")
        send, receive = self._memory(sendbuf, count, datatype), self._memory(recvbuf, count, datatype)
        summed = send.copy()
        if self._mpi is not None:
            MPI, world = self._mpi
            world.Allreduce(MPI.IN_PLACE, summed, op=MPI.SUM)
        receive[...] = summed

    def bcast(self, buff: int, count: int, datatype: int, root: int, stream: int) -> None:
        self._check_open()
        memory = self._memory(buff, count, datatype)
        if self._mpi is not None:
            host = memory.copy()
            self._mpi[1].Bcast(host, root=root)
            memory[...] = host

    def rank_id(self) -> int:
        return self._rank

    def size(self) -> int:
        return self._ndev

    def device_id(self) -> int:
        from . import fake_cupy  # noqa: PLC0415 - the current device, as NCCL records it at init

        return fake_cupy.current_device_id()

    def destroy(self) -> None:
        self._open = False

    def abort(self) -> None:
        self._open = False


def build() -> ModuleType:
    """The ``cupy.cuda.nccl`` module of the fake device."""
    nccl = ModuleType("cupy.cuda.nccl", __doc__)
    nccl.__dict__.update(CONSTANTS)
    nccl.__dict__.update(available=True, get_unique_id=get_unique_id, get_version=get_version,
                         get_build_version=get_build_version, groupStart=groupStart, groupEnd=groupEnd,
                         NcclError=NcclError, NcclCommunicator=NcclCommunicator)
    return nccl
