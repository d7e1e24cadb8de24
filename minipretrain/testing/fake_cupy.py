"""A strict stand-in for CuPy on a machine without a GPU: the CuPy code path, exercised on the CPU.

``install()`` registers modules named ``cupy``, ``cupy.random``, ``cupy.linalg``, ``cupy.cuda``, ``cupyx``,
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

import contextlib
import math
import sys
import warnings
from collections import Counter
from types import ModuleType
from typing import Any, Iterator

import numpy as np

from . import cupy_names

IMPLICIT_CONVERSION = ("Implicit conversion to a NumPy array is not allowed. "
                       "Please use `.get()` to construct a NumPy array explicitly.")
_THIS_FILE = __file__


# ----------------------------------------------------------------- synchronisation counting
class SyncLog:
    """Host synchronisations seen while active: ``total`` and ``sites`` (``Counter`` of ``file:line``)."""

    def __init__(self) -> None:
        self.sites: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return sum(self.sites.values())

    def __repr__(self) -> str:
        return f"SyncLog(total={self.total}, sites={dict(self.sites.most_common())})"


_LOGS: list[SyncLog] = []
TOTAL = SyncLog()  # every sync since install, for a quick look


def _record_sync(kind: str) -> None:
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename == _THIS_FILE:
        frame = frame.f_back
    site = f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame is not None else "?"
    for log in (TOTAL, *_LOGS):
        log.sites[f"{site} ({kind})"] += 1


@contextlib.contextmanager
def count_syncs() -> Iterator[SyncLog]:
    """Count the host synchronisations of the ``with`` body."""
    log = SyncLog()
    _LOGS.append(log)
    try:
        yield log
    finally:
        _LOGS.remove(log)


# ----------------------------------------------------------------- wrapping and unwrapping
def _unsupported(value: Any) -> TypeError:
    return TypeError(f"Unsupported type {type(value)}")


def _unwrap(value: Any, allow_host: bool = False) -> Any:
    """The NumPy payload of device arrays inside ``value``; host ndarrays refused unless ``allow_host``."""
    if isinstance(value, ndarray):
        return value._a
    if isinstance(value, np.ndarray):
        if allow_host:
            return value
        raise _unsupported(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v, allow_host) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v, allow_host) for k, v in value.items()}
    return value


def _wrap(value: Any) -> Any:
    """Device arrays for NumPy results (scalars become 0-d arrays, as CuPy's reductions return)."""
    if isinstance(value, np.ndarray):
        return ndarray._of(value)
    if isinstance(value, np.generic):
        return ndarray._of(np.asarray(value))
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def _index_key(key: Any) -> tuple[Any, bool]:
    """The NumPy key for ``key`` and whether it holds a boolean mask (which needs the count of Trues: a sync)."""
    parts = key if isinstance(key, tuple) else (key,)
    unwrapped, masked = [], False
    for part in parts:
        if isinstance(part, ndarray):
            part = part._a
        if isinstance(part, np.ndarray) and part.dtype == np.bool_ and part.ndim > 0:
            masked = True
        unwrapped.append(part)
    return (tuple(unwrapped) if isinstance(key, tuple) else unwrapped[0]), masked


def _operand(other: Any) -> Any:
    if isinstance(other, ndarray):
        return other._a
    if isinstance(other, np.ndarray):
        raise _unsupported(other)
    if isinstance(other, (bool, int, float, complex, np.generic)):
        return other
    raise _unsupported(other)


def _defers(other: Any) -> bool:
    """CuPy hands a binary op to the other operand when its ``__array_priority__`` is higher (e.g. Tensor)."""
    return (not isinstance(other, (ndarray, np.ndarray))
            and getattr(other, "__array_priority__", -math.inf) > ndarray.__array_priority__)


def _binary(name: str, reflected: bool = False) -> Any:
    op = getattr(np.ndarray, name)

    def method(self: ndarray, other: Any) -> Any:
        if _defers(other):
            return NotImplemented
        return _wrap(op(self._a, _operand(other)))

    method.__name__ = name
    return method


def _inplace(name: str) -> Any:
    op = getattr(np.ndarray, name)

    def method(self: ndarray, other: Any) -> Any:
        if _defers(other):
            return NotImplemented
        op(self._a, _operand(other))
        return self

    method.__name__ = name
    return method


def _unary(name: str) -> Any:
    op = getattr(np.ndarray, name)

    def method(self: ndarray) -> Any:
        return _wrap(op(self._a))

    method.__name__ = name
    return method


_SYNCING_METHODS = {"item", "tolist", "nonzero"}
_PROPERTIES = {"shape", "dtype", "ndim", "size", "strides", "nbytes", "itemsize"}


class ndarray:  # noqa: N801 - CuPy's name
    """A device array: a NumPy array behind a wall that only explicit transfers cross."""

    __module__ = "cupy"  # minipretrain.backend recognises CuPy arrays by their type's module
    __slots__ = ("_a",)
    __array_priority__ = 100  # CuPy's value
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, shape: Any, dtype: Any = float) -> None:
        self._a = np.empty(shape, dtype=dtype)

    @classmethod
    def _of(cls, array: np.ndarray) -> ndarray:
        result = cls.__new__(cls)
        result._a = array
        return result

    # --- the wall
    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(IMPLICIT_CONVERSION)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        fake = _CUPY_MODULE.__dict__.get(ufunc.__name__)
        if not isinstance(fake, ufunc_):
            return NotImplemented
        return getattr(fake, method)(*inputs, **kwargs) if method != "__call__" else fake(*inputs, **kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        fake = _CUPY_MODULE.__dict__.get(func.__name__)
        if fake is None or not callable(fake):
            return NotImplemented
        return fake(*args, **kwargs)

    # --- explicit transfers and other synchronisations
    def get(self, stream: Any = None, order: str = "C", out: Any = None, blocking: bool = True) -> np.ndarray:
        _record_sync("get")
        if out is not None:
            out[...] = self._a
            return out
        return np.array(self._a, order=order)

    def set(self, arr: np.ndarray, stream: Any = None) -> None:
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"Only numpy.ndarray can be set to cupy.ndarray, got {type(arr)}")
        self._a[...] = arr

    def __bool__(self) -> bool:
        _record_sync("bool")
        return bool(self._a)

    def __float__(self) -> float:
        _record_sync("float")
        return float(self._a)

    def __int__(self) -> int:
        _record_sync("int")
        return int(self._a)

    def __complex__(self) -> complex:
        _record_sync("complex")
        return complex(self._a)

    def __format__(self, spec: str) -> str:
        _record_sync("format")
        return format(self._a.item() if self._a.ndim == 0 else self._a, spec)

    def __repr__(self) -> str:
        return repr(self._a)

    def __str__(self) -> str:
        return str(self._a)

    def __len__(self) -> int:
        return len(self._a)

    def __iter__(self) -> Iterator[Any]:
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (_wrap(self._a[i]) for i in range(len(self._a)))

    def __copy__(self) -> ndarray:
        return ndarray._of(self._a.copy())

    def __deepcopy__(self, memo: Any) -> ndarray:
        return ndarray._of(self._a.copy())

    # --- indexing
    def __getitem__(self, key: Any) -> Any:
        key, masked = _index_key(key)
        if masked:
            _record_sync("boolean-mask indexing")
        return _wrap(self._a[key])

    def __setitem__(self, key: Any, value: Any) -> None:
        key, masked = _index_key(key)
        if masked:
            _record_sync("boolean-mask assignment")
        self._a[key] = value._a if isinstance(value, ndarray) else value  # a host value is copied over (CuPy does)

    # --- attributes
    @property
    def T(self) -> ndarray:  # noqa: N802
        return ndarray._of(self._a.T)

    @property
    def mT(self) -> ndarray:  # noqa: N802
        return ndarray._of(self._a.mT)

    @property
    def real(self) -> ndarray:
        return ndarray._of(self._a.real)

    @property
    def imag(self) -> ndarray:
        return ndarray._of(self._a.imag)

    @property
    def flags(self) -> Any:
        return self._a.flags

    @property
    def device(self) -> Any:
        return _CUDA.Device(0)

    def __getattr__(self, name: str) -> Any:
        if name in _PROPERTIES:
            return getattr(self._a, name)
        if name not in cupy_names.NDARRAY or not hasattr(np.ndarray, name):
            raise AttributeError(f"'cupy.ndarray' object has no attribute '{name}'")
        method = getattr(self._a, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            if name in _SYNCING_METHODS:
                _record_sync(name)
            result = method(*_unwrap(args), **_unwrap(kwargs))
            return result if name in ("item", "tolist") else _wrap(result)

        return call


for _name in ("__add__", "__sub__", "__mul__", "__truediv__", "__floordiv__", "__mod__", "__pow__", "__matmul__",
              "__and__", "__or__", "__xor__", "__lshift__", "__rshift__", "__eq__", "__ne__", "__lt__", "__le__",
              "__gt__", "__ge__", "__divmod__", "__radd__", "__rsub__", "__rmul__", "__rtruediv__", "__rfloordiv__",
              "__rmod__", "__rpow__", "__rmatmul__", "__rand__", "__ror__", "__rxor__", "__rlshift__",
              "__rrshift__", "__rdivmod__"):
    setattr(ndarray, _name, _binary(_name))
for _name in ("__iadd__", "__isub__", "__imul__", "__itruediv__", "__ifloordiv__", "__imod__", "__ipow__",
              "__iand__", "__ior__", "__ixor__", "__ilshift__", "__irshift__"):
    setattr(ndarray, _name, _inplace(_name))
for _name in ("__neg__", "__pos__", "__abs__", "__invert__"):
    setattr(ndarray, _name, _unary(_name))


# ----------------------------------------------------------------- functions and ufuncs
class ufunc_:  # noqa: N801
    """A CuPy ufunc: device arrays and scalars in, device arrays out; NumPy arrays refused."""

    __module__ = "cupy._core._kernel"

    def __init__(self, numpy_ufunc: np.ufunc) -> None:
        self._u = numpy_ufunc
        self.__name__ = numpy_ufunc.__name__
        self.nin, self.nout = numpy_ufunc.nin, numpy_ufunc.nout

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _wrap(self._u(*_unwrap(args), **_unwrap(kwargs)))

    def reduce(self, *args: Any, **kwargs: Any) -> Any:
        return _wrap(self._u.reduce(*_unwrap(args), **_unwrap(kwargs)))

    def accumulate(self, *args: Any, **kwargs: Any) -> Any:
        return _wrap(self._u.accumulate(*_unwrap(args), **_unwrap(kwargs)))

    def outer(self, *args: Any, **kwargs: Any) -> Any:
        return _wrap(self._u.outer(*_unwrap(args), **_unwrap(kwargs)))

    def at(self, a: ndarray, indices: Any, b: Any = None) -> None:
        if not isinstance(a, ndarray):
            raise _unsupported(a)
        key, _ = _index_key(indices)
        self._u.at(a._a, key, *(() if b is None else (_operand(b),)))


_HOST_INPUT_OK = {"asarray", "array", "asanyarray", "ascontiguousarray", "asfortranarray"}
_ARRAY_RESULT = {"allclose", "array_equal", "array_equiv", "count_nonzero"}


def _function(name: str, numpy_function: Any) -> Any:
    allow_host = name in _HOST_INPUT_OK

    def call(*args: Any, **kwargs: Any) -> Any:
        result = numpy_function(*_unwrap(args, allow_host), **_unwrap(kwargs, allow_host))
        if name in _ARRAY_RESULT:
            result = np.asarray(result)
        if allow_host and isinstance(result, np.ndarray) and args and result is _unwrap(args[0], True) \
                and not isinstance(args[0], ndarray):
            result = result.copy()  # a host array is copied to the device, never shared
        return _wrap(result)

    call.__name__ = name
    call.__module__ = "cupy"
    return call


def asnumpy(a: Any, stream: Any = None, order: str = "C", out: Any = None, blocking: bool = True) -> np.ndarray:
    """A host copy (CuPy's ``asnumpy``): a synchronisation for device arrays."""
    if isinstance(a, ndarray):
        return a.get(order=order, out=out)
    return np.asarray(a, order=order)


def get_array_module(*args: Any) -> ModuleType:
    return _CUPY_MODULE if any(isinstance(a, ndarray) for a in args) else np


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
    def synchronize(self) -> None:
        _record_sync("stream synchronize")


class _Device:
    def __init__(self, device: int = 0) -> None:
        self.id = device

    def synchronize(self) -> None:
        _record_sync("device synchronize")

    def __repr__(self) -> str:
        return f"<CUDA Device {self.id}>"


def _build_cuda() -> ModuleType:
    cuda = ModuleType("cupy.cuda", "Fake CUDA runtime: one device, named 'Fake GPU'.")
    runtime = ModuleType("cupy.cuda.runtime")
    runtime.getDeviceCount = lambda: 1
    runtime.getDeviceProperties = lambda device: {"name": b"Fake GPU (minipretrain.testing.fake_cupy)",
                                                  "totalGlobalMem": 16 << 30}
    runtime.deviceSynchronize = lambda: _record_sync("device synchronize")
    cuda.runtime = runtime
    cuda.Device = _Device
    cuda.Stream = type("Stream", (), {"null": _Stream()})
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
MODULES = {"cupy": _CUPY_MODULE, "cupy.random": _CUPY_MODULE.random, "cupy.linalg": _CUPY_MODULE.linalg,
           "cupy.cuda": _CUDA, "cupy.cuda.runtime": _CUDA.runtime, "cupyx": _CUPYX, "cupyx.scipy": _CUPYX_SCIPY,
           "cupyx.scipy.special": _CUPYX_SPECIAL}


def install() -> ModuleType:
    """Register the fake modules in ``sys.modules`` (replacing a real CuPy for this process); returns ``cupy``."""
    sys.modules.update(MODULES)
    return _CUPY_MODULE


def installed() -> bool:
    return sys.modules.get("cupy") is _CUPY_MODULE
