"""NCCL all-reduce of GPU buffers (CuPy's ``cupy.cuda.nccl``), bootstrapped over MPI as llm.c does.

Bootstrap (llm.c, ``multi_gpu_config_init``): every rank picks its GPU by its rank *on its machine*; rank 0
asks NCCL for a unique id; MPI broadcasts it; each rank joins the NCCL communicator with (world size, id,
rank). From then on the gradient all-reduce runs GPU to GPU on the current stream, and everything else
(metric sums, broadcasts of Python objects, barriers, the config check) stays on MPI.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import DeviceError, module_for
from .communicator import Communicator, DistributedError, MPICommunicator, _check_buffer


CHOOSE_MPI = ("or send the gradients through MPI on host copies: MINIPRETRAIN_COMMUNICATOR=mpi "
              "(init_communicator('mpi'))")


def _import_nccl() -> tuple[Any, Any]:
    """``cupy`` and ``cupy.cuda.nccl`` (the fake device's under ``MINIPRETRAIN_FAKE_CUPY=1``), or a clear error."""
    try:
        cupy = module_for("cuda")
        from cupy.cuda import nccl  # noqa: PLC0415 - CuPy's binding; its `available` says if libnccl loaded
    except (ImportError, DeviceError) as error:
        raise DistributedError(f"the NCCL backend needs CuPy with a GPU ({error}); {CHOOSE_MPI}") from error
    if not getattr(nccl, "available", False):
        raise DistributedError("this CuPy cannot load the NCCL library (cupy.cuda.nccl.available is False): "
                               f"pip install nvidia-nccl-cu12, {CHOOSE_MPI}")
    return cupy, nccl


class NCCLCommunicator(Communicator):
    """``allreduce_sum`` over NCCL on CuPy arrays; the other collectives delegate to ``mpi``.

    Args:
        mpi: the :class:`MPICommunicator` that bootstraps NCCL and carries the small collectives.
        cupy, nccl: the modules to use (default: ``cupy`` and ``cupy.cuda.nccl``; tests pass stand-ins).
        local_rank: this rank's index among the ranks of its machine (default: from an MPI shared-memory split).
    """

    backend = "nccl"

    def __init__(self, mpi: MPICommunicator, cupy: Any = None, nccl: Any = None, local_rank: int | None = None) -> None:
        if cupy is None or nccl is None:
            cupy, nccl = _import_nccl()
        self.mpi, self.cupy, self.nccl = mpi, cupy, nccl
        self.rank, self.world_size = mpi.rank, mpi.world_size
        if local_rank is None:
            local_rank = mpi.comm.Split_type(mpi.MPI.COMM_TYPE_SHARED).Get_rank()
        devices = cupy.cuda.runtime.getDeviceCount()
        if local_rank >= devices:
            raise DistributedError(f"rank {self.rank} is rank {local_rank} on its machine, which has only {devices} "
                                   "GPU(s): start at most one rank per GPU")
        self.device_id = int(local_rank)
        cupy.cuda.Device(self.device_id).use()
        unique_id = nccl.get_unique_id() if self.rank == 0 else None
        unique_id = mpi.broadcast(unique_id, root=0)
        self.comm = nccl.NcclCommunicator(self.world_size, unique_id, self.rank)
        self._dtypes = {np.dtype(np.float16): nccl.NCCL_FLOAT16, np.dtype(np.float32): nccl.NCCL_FLOAT32,
                        np.dtype(np.float64): nccl.NCCL_FLOAT64}

    def allreduce_sum(self, buffer: Any) -> Any:
        pointer, datatype = self._device_buffer(buffer)
        stream = self.cupy.cuda.get_current_stream().ptr
        self.comm.allReduce(pointer, pointer, buffer.size, datatype, self.nccl.NCCL_SUM, stream)  # in place
        return buffer

    def _device_buffer(self, buffer: Any) -> tuple[int, int]:
        _check_buffer(buffer)
        if not isinstance(buffer, self.cupy.ndarray):
            raise TypeError(f"the NCCL backend works on GPU (CuPy) arrays, got {type(buffer).__name__}; "
                            "move the model to 'cuda' or use the MPI backend")
        datatype = self._dtypes.get(np.dtype(buffer.dtype))
        if datatype is None:
            raise TypeError(f"NCCL collectives here take float16/32/64 buffers, got {buffer.dtype}")
        return buffer.data.ptr, datatype

    def broadcast_buffer(self, buffer: Any, root: int = 0) -> Any:
        pointer, datatype = self._device_buffer(buffer)
        self.comm.bcast(pointer, buffer.size, datatype, root, self.cupy.cuda.get_current_stream().ptr)
        return buffer

    def allreduce_scalars(self, *values: float) -> tuple[float, ...]:
        return self.mpi.allreduce_scalars(*values)

    def broadcast(self, value: Any, root: int = 0) -> Any:
        return self.mpi.broadcast(value, root)

    def barrier(self) -> None:
        self.cupy.cuda.get_current_stream().synchronize()
        self.mpi.barrier()

    def check_agreement(self, value: Any, what: str = "configuration") -> str:
        return self.mpi.check_agreement(value, what)

    def abort(self, code: int = 1) -> None:
        self.mpi.abort(code)
