"""The arrays of the strict fake device (``fake_cupy``): a NumPy array behind a wall only explicit transfers cross.

Here: the host-synchronisation counter, the ``ndarray`` stand-in, CuPy-style ufuncs and module functions
(device arrays and scalars in, device arrays out, NumPy arrays refused). ``fake_cupy`` builds the modules
(``cupy``, ``cupy.random``, ``cupy.cuda``, ``cupyx``...) from them and registers itself in ``MODULES_BY_NAME``.
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
import weakref
from collections import Counter
from types import ModuleType
from typing import Any, Iterator

import numpy as np

from . import cupy_names

IMPLICIT_CONVERSION = ("Implicit conversion to a NumPy array is not allowed. "
                       "Please use `.get()` to construct a NumPy array explicitly.")
_HERE = os.path.dirname(os.path.abspath(__file__))  # frames in this folder are the fake's, not call sites
#: The fake modules by name, filled in by ``fake_cupy`` (``__array_ufunc__`` dispatches through "cupy").
MODULES_BY_NAME: dict[str, ModuleType] = {}

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
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == _HERE:
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
        fake = MODULES_BY_NAME["cupy"].__dict__.get(ufunc.__name__)
        if not isinstance(fake, ufunc_):
            return NotImplemented
        return getattr(fake, method)(*inputs, **kwargs) if method != "__call__" else fake(*inputs, **kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        fake = MODULES_BY_NAME["cupy"].__dict__.get(func.__name__)
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
        return MODULES_BY_NAME["cupy"].cuda.Device(0)

    @property
    def data(self) -> MemoryPointer:
        """The array's device pointer (``.ptr``), as CuPy's ``MemoryPointer``: what NCCL calls take."""
        return MemoryPointer(self._a)

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


class MemoryPointer:
    """CuPy's ``cupy.cuda.MemoryPointer``, reduced to ``ptr``: the address of the array's first element.

    Taking it records the array, so that :func:`array_at` (the fake NCCL) finds the memory behind a pointer."""

    __slots__ = ("ptr",)

    def __init__(self, array: np.ndarray) -> None:
        self.ptr = int(array.ctypes.data)
        _POINTED[self.ptr] = weakref.ref(array)


_POINTED: dict[int, Any] = {}


def array_at(pointer: int, count: int, dtype: Any) -> np.ndarray:
    """``count`` elements of ``dtype`` at ``pointer`` (a ``.data.ptr`` taken earlier), as a writable NumPy view;
    a clear error for a pointer the fake never handed out, freed memory, or a count past the end."""
    reference = _POINTED.get(int(pointer))
    array = reference() if reference is not None else None
    if array is None:
        raise ValueError(f"fake device: no live array at pointer {pointer:#x} (take it from array.data.ptr)")
    if not array.flags.c_contiguous:
        raise ValueError("fake device: the memory behind a pointer must be one contiguous array")
    nbytes = int(count) * np.dtype(dtype).itemsize
    if nbytes > array.nbytes:
        raise ValueError(f"fake device: {count} × {np.dtype(dtype)} ({nbytes} bytes) run past the end of the "
                         f"{array.nbytes}-byte array at {pointer:#x}")
    return array.reshape(-1).view(np.uint8)[:nbytes].view(dtype)


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
    return MODULES_BY_NAME["cupy"] if any(isinstance(a, ndarray) for a in args) else np
