"""A strict stand-in for CuPy on a machine without a GPU: the CuPy code path, exercised on the CPU.

``install()`` registers modules named ``cupy``, ``cupy.random``, ``cupy.linalg``, ``cupy.cuda`` (with
``cupy.cuda.nccl``, collectives on the host: ``fake_nccl``), ``cupyx``,
``cupyx.scipy`` and ``cupyx.scipy.special`` in ``sys.modules``. Their arrays wrap NumPy arrays but are *not*
ndarray subclasses, and they refuse what CuPy refuses, with CuPy's messages:

- ``np.asarray(device_array)`` and ``numpy_array[...] = device_array`` raise (``__array__`` raises TypeError);
- an op mixing a NumPy array with a device array raises ("Unsupported type <class 'numpy.ndarray'>");
- only names the real CuPy has are exposed (``cupy_names``, dumped from CuPy 14), so ``cupy.some_numpy_only``
  is an AttributeError here as on a GPU; reductions return 0-d device arrays, not host scalars;
- the random generator is CuPy's shape of API: ``default_rng(seed).bit_generator.state`` is a *method*, and
  only the distributions CuPy's ``Generator`` has exist (no ``normal``, ``choice``, ``permutation``).

What CuPy allows passes: ``cupy.asarray(numpy_array)``, indexing with a NumPy integer array, ``np.sqrt(dev)``
(dispatched to the device through ``__array_ufunc__``), ``np.concatenate([dev, dev])`` (``__array_function__``).

Every host synchronisation (``item``, ``float``/``int``/``bool``/``complex``, ``get``, ``tolist``, ``asnumpy``,
boolean-mask indexing, ``nonzero``, formatting) is counted per call site (``file:line`` of the first frame
outside this module): ``with count_syncs() as syncs: ...; syncs.total, syncs.sites``. The values are NumPy's,
so results agree with the CPU path bit for bit where the CPU path is deterministic; random draws do not match
a real GPU's (CuPy's XORWOW streams differ from NumPy's PCG64).

Turn it on with ``MINIPRETRAIN_FAKE_CUPY=1`` (``minipretrain.backend`` then installs it before importing
CuPy) or ``pytest --fake-gpu``.
"""
from __future__ import annotations

import os
import sys
import warnings
from types import ModuleType
from typing import Any

import numpy as np

from . import cupy_names, fake_nccl
from .fake_array import (  # noqa: F401 - re-exported: fake_cupy is the one name to import
    IMPLICIT_CONVERSION, MODULES_BY_NAME, TOTAL, MemoryPointer, SyncLog, _function, _operand, _record_sync, _wrap,
    asnumpy, count_syncs, get_array_module, ndarray, ufunc_,
)


# ----------------------------------------------------------------- random
class XORWOW:
    """CuPy's default bit generator, in shape: ``state`` is a method (it returns a handle, not a dict)."""

    __module__ = "cupy.random._bit_generator"

    def __init__(self, seed: Any = None) -> None:
        self._numpy = np.random.Generator(np.random.PCG64(seed))

    def state(self) -> int:
        return id(self._numpy)

    def random_raw(self, size: Any = None, output: bool = True) -> Any:
        return _wrap(self._numpy.bit_generator.random_raw(size)) if output else None


class Generator:
    """CuPy's ``Generator``: only the distributions CuPy has; float32 or float64 draws, device arrays out."""

    __module__ = "cupy.random._generator_api"

    def __init__(self, bit_generator: XORWOW) -> None:
        self.bit_generator = bit_generator

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"'cupy.random._generator_api.Generator' object has no attribute '{name}'")

    @property
    def _numpy(self) -> np.random.Generator:
        return self.bit_generator._numpy

    def random(self, size: Any = None, dtype: Any = np.float64, out: Any = None) -> Any:
        return self._fill(self._numpy.random(size, dtype=_float_dtype(dtype)), out)

    def standard_normal(self, size: Any = None, dtype: Any = np.float64, out: Any = None) -> Any:
        return self._fill(self._numpy.standard_normal(size, dtype=_float_dtype(dtype)), out)

    def uniform(self, low: float = 0.0, high: float = 1.0, size: Any = None, dtype: Any = np.float64) -> Any:
        return _wrap(self._numpy.uniform(low, high, size).astype(_float_dtype(dtype)))

    def integers(self, low: Any, high: Any = None, size: Any = None, dtype: Any = np.int64,
                 endpoint: bool = False) -> Any:
        return _wrap(np.asarray(self._numpy.integers(_operand(low), None if high is None else _operand(high),
                                                     size, dtype=dtype, endpoint=endpoint)))

    def standard_exponential(self, size: Any = None, dtype: Any = np.float64, method: str = "inv",
                             out: Any = None) -> Any:
        return self._fill(self._numpy.standard_exponential(size, dtype=_float_dtype(dtype)), out)

    @staticmethod
    def _fill(values: Any, out: Any) -> Any:
        if out is None:
            return _wrap(np.asarray(values))
        out._a[...] = values
        return out


def _float_dtype(dtype: Any) -> Any:
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"Unsupported dtype {dtype.name} for random")
    return dtype


def default_rng(seed: Any = None) -> Generator:
    if isinstance(seed, Generator):
        return seed
    return Generator(seed if isinstance(seed, XORWOW) else XORWOW(seed))


# ----------------------------------------------------------------- cuda
class _Stream:
    ptr = 0  # the null (default) stream's handle, as CuPy's

    def synchronize(self) -> None:
        _record_sync("stream synchronize")


_NULL_STREAM = _Stream()
#: How many devices the fake reports (``MINIPRETRAIN_FAKE_CUPY_DEVICES``, default 1): a 2-rank mpiexec run on one
#: machine needs two, one per rank, as on a real multi-GPU machine. Every device holds its arrays in host memory.
_DEVICES_VARIABLE = "MINIPRETRAIN_FAKE_CUPY_DEVICES"
_current_device = 0


def device_count() -> int:
    text = os.environ.get(_DEVICES_VARIABLE, "1").strip() or "1"
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{_DEVICES_VARIABLE} must be a positive whole number of fake devices, got {text!r}")
    return int(text)


def current_device_id() -> int:
    return _current_device


class _Device:
    def __init__(self, device: int = 0) -> None:
        self.id = device

    def use(self) -> None:
        global _current_device
        if not 0 <= self.id < device_count():
            raise RuntimeError(f"cudaErrorInvalidDevice: invalid device ordinal {self.id} (the fake device has "
                               f"{device_count()}; set {_DEVICES_VARIABLE})")
        _current_device = self.id

    def synchronize(self) -> None:
        _record_sync("device synchronize")

    def __repr__(self) -> str:
        return f"<CUDA Device {self.id}>"


def _build_cuda() -> ModuleType:
    cuda = ModuleType("cupy.cuda", "Fake CUDA runtime: devices named 'Fake GPU' (one unless "
                                   f"{_DEVICES_VARIABLE} says more), with a host-side NCCL.")
    runtime = ModuleType("cupy.cuda.runtime")
    runtime.getDeviceCount = device_count
    runtime.getDeviceProperties = lambda device: {"name": b"Fake GPU (minipretrain.testing.fake_cupy)",
                                                  "totalGlobalMem": 16 << 30}
    runtime.deviceSynchronize = lambda: _record_sync("device synchronize")
    cuda.runtime = runtime
    cuda.Device = _Device
    cuda.Stream = type("Stream", (), {"null": _NULL_STREAM})
    cuda.get_current_stream = lambda device=None: _NULL_STREAM
    cuda.MemoryPointer = MemoryPointer
    cuda.nccl = fake_nccl.build()
    return cuda


_CUDA = _build_cuda()


# ----------------------------------------------------------------- the modules
def _populate(module: ModuleType, names: frozenset[str], source: Any) -> None:
    for name in sorted(names):
        if name in module.__dict__ or not hasattr(source, name):
            continue
        value = getattr(source, name)
        if isinstance(value, ModuleType):
            continue  # submodules are built here (random, linalg, cuda) or not offered
        if isinstance(value, np.ufunc):
            module.__dict__[name] = ufunc_(value)
        elif isinstance(value, type) or not callable(value):
            module.__dict__[name] = value  # dtypes, constants and exception classes are NumPy's own in CuPy
        else:
            module.__dict__[name] = _function(name, value)


def _build_cupy() -> ModuleType:
    cupy = ModuleType("cupy", __doc__)
    cupy.__version__ = f"{cupy_names.CUPY_VERSION}+fake"
    cupy.__dict__.update(ndarray=ndarray, asnumpy=asnumpy, get_array_module=get_array_module, cuda=_CUDA)
    _populate(cupy, cupy_names.CUPY, np)

    random = ModuleType("cupy.random")
    random.__dict__.update(default_rng=default_rng, Generator=Generator, XORWOW=XORWOW)
    cupy.random = random

    linalg = ModuleType("cupy.linalg")
    _populate(linalg, cupy_names.CUPY_LINALG, np.linalg)
    cupy.linalg = linalg
    return cupy


def _build_cupyx() -> tuple[ModuleType, ModuleType, ModuleType]:
    cupyx = ModuleType("cupyx")
    scipy = ModuleType("cupyx.scipy")
    special = ModuleType("cupyx.scipy.special")
    try:
        import scipy.special as host_special  # noqa: PLC0415 - only for cupyx.scipy.special
    except ImportError:  # pragma: no cover - scipy is a dev dependency
        host_special = None
    if host_special is not None:
        _populate(special, cupy_names.CUPYX_SCIPY_SPECIAL, host_special)

    def scatter_add(a: ndarray, slices: Any, value: Any) -> None:
        warnings.warn("cupyx.scatter_add is deprecated. Use cupy.add.at instead.", DeprecationWarning, stacklevel=2)
        _CUPY_MODULE.add.at(a, slices, value)

    cupyx.scatter_add = scatter_add
    cupyx.scipy = scipy
    scipy.special = special
    return cupyx, scipy, special


_CUPY_MODULE = _build_cupy()
_CUPYX, _CUPYX_SCIPY, _CUPYX_SPECIAL = _build_cupyx()
MODULES: dict[str, ModuleType] = {
    "cupy": _CUPY_MODULE, "cupy.random": _CUPY_MODULE.random, "cupy.linalg": _CUPY_MODULE.linalg, "cupy.cuda": _CUDA,
    "cupy.cuda.runtime": _CUDA.runtime, "cupy.cuda.nccl": _CUDA.nccl, "cupyx": _CUPYX, "cupyx.scipy": _CUPYX_SCIPY,
    "cupyx.scipy.special": _CUPYX_SPECIAL,
}
MODULES_BY_NAME.update(MODULES)


def install() -> ModuleType:
    """Register the fake modules in ``sys.modules`` (replacing a real CuPy for this process); returns ``cupy``."""
    sys.modules.update(MODULES)
    return _CUPY_MODULE


def installed() -> bool:
    return sys.modules.get("cupy") is _CUPY_MODULE
