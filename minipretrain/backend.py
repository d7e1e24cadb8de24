"""Array backends: NumPy by default, CuPy when asked.

Every op takes its array module from its inputs (``xp = array_module(x)``), so one code path serves both
(the idea comes from DeZero's ``get_array_module``). CuPy is imported lazily: importing minipretrain never
needs it.

Device names are ``"cpu"`` and ``"cuda"``; the default comes from ``MINIPRETRAIN_DEVICE`` (``cpu`` if unset).
``MINIPRETRAIN_FAKE_CUPY=1`` makes "cuda" the strict CPU stand-in of ``minipretrain.testing.fake_cupy``.
"""
from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import numpy as np

from .errors import MinipretrainError

DEVICES = ("cpu", "cuda")


class DeviceError(MinipretrainError, RuntimeError):
    """A device was asked for that cannot be used here, or arrays from two devices were mixed."""


def fake_cupy_enabled() -> bool:
    """True when ``MINIPRETRAIN_FAKE_CUPY`` asks for the strict CPU stand-in (``minipretrain.testing.fake_cupy``)."""
    return os.environ.get("MINIPRETRAIN_FAKE_CUPY", "").strip().lower() not in ("", "0", "false", "no")


def _import_cupy() -> ModuleType:
    if fake_cupy_enabled():
        from .testing import fake_cupy  # noqa: PLC0415 - only on request

        fake_cupy.install()
    try:
        import cupy  # noqa: PLC0415 - optional dependency
    except ImportError as error:  # pragma: no cover - depends on the machine
        raise DeviceError(
            "device 'cuda' needs CuPy, which is not installed. Install it with "
            "`pip install 'minipretrain[gpu]'` (CUDA 12) or pick device 'cpu'."
        ) from error
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # pragma: no cover - depends on the machine
        raise DeviceError(f"CuPy is installed but found no usable CUDA GPU ({error}). Use device 'cpu'.") from error
    if count == 0:  # pragma: no cover - depends on the machine
        raise DeviceError("CuPy is installed but found no CUDA GPU. Use device 'cpu'.")
    return cupy


def cupy_available() -> bool:
    """True when CuPy imports and sees at least one GPU."""
    try:
        _import_cupy()
    except DeviceError:
        return False
    return True  # pragma: no cover - needs a GPU


def check_device(device: str) -> str:
    """Return ``device`` normalised, or raise a clear error naming the valid choices."""
    name = str(device).lower()
    if name.startswith("cuda"):
        name = "cuda"
    if name not in DEVICES:
        raise DeviceError(f"unknown device {device!r}; choose one of {DEVICES}")
    return name


def default_device() -> str:
    """The device new tensors go to: ``MINIPRETRAIN_DEVICE`` or ``"cpu"``."""
    return check_device(os.environ.get("MINIPRETRAIN_DEVICE", "cpu"))


def module_for(device: str) -> ModuleType:
    """The array module (numpy or cupy) that holds arrays on ``device``."""
    return _import_cupy() if check_device(device) == "cuda" else np


def array_module(*arrays: Any) -> ModuleType:
    """The array module of ``arrays``: cupy if any is a CuPy array, else numpy."""
    for array in arrays:
        if type(array).__module__.startswith("cupy"):
            import cupy  # noqa: PLC0415

            return cupy
    return np


def device_of(array: Any) -> str:
    """``"cuda"`` for a CuPy array, ``"cpu"`` otherwise."""
    return "cuda" if type(array).__module__.startswith("cupy") else "cpu"


def to_device(array: Any, device: str) -> Any:
    """Copy ``array`` to ``device`` (no copy when it is already there)."""
    device = check_device(device)
    if device_of(array) == device:
        return array
    if device == "cuda":
        return module_for("cuda").asarray(array)
    return array.get()  # pragma: no cover - needs a GPU


def to_host(array: Any) -> np.ndarray:
    """A NumPy array with the same values (a copy from the GPU when needed)."""
    return array.get() if device_of(array) == "cuda" else np.asarray(array)


def id_range(ids: Any, ignore_index: int | None = None) -> tuple[int, int]:
    """(min, max) of integer ``ids`` (entries equal to ``ignore_index`` skipped) as Python ints.

    Free for host ids; one device-to-host read for device ids, which is why callers check ids while they are
    still on the host. With nothing left to check it returns (iinfo.max, iinfo.min), which passes any range test.
    """
    xp = array_module(ids)
    info = np.iinfo(ids.dtype)
    if ignore_index is None:
        low, high = ids.min(), ids.max()
    else:
        real = ids != ignore_index
        low, high = xp.where(real, ids, info.max).min(), xp.where(real, ids, info.min).max()
    low, high = to_host(xp.stack([low, high])).tolist()
    return int(low), int(high)


def scatter_add(target: Any, indices: Any, values: Any) -> None:
    """``target[indices] += values`` with repeated indices summed (in place, on either device)."""
    # cupy.add.at, not cupyx.scatter_add: the latter is deprecated since CuPy 13 and warns on every call.
    array_module(target).add.at(target, indices, values)


def tune_allocator() -> bool:
    """Keep freed memory in the process instead of returning it to the OS (glibc only; returns True if set).

    A training step allocates and frees the same large temporaries (activations, gradients) every time.
    By default glibc hands big freed blocks back to the OS and the next step page-faults them in again;
    on the 2-core machines this project targets that costs about a quarter of a baby-GPT step (measured:
    ~150 ms -> ~110 ms median). Raising the mmap threshold to its maximum (32 MiB) and the trim threshold
    to 1 GiB keeps those pages mapped. Set ``MINIPRETRAIN_NO_MALLOPT=1`` to leave the allocator alone.
    """
    if os.environ.get("MINIPRETRAIN_NO_MALLOPT") or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # pragma: no cover - musl and other libcs
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
    return bool(mallopt(m_trim_threshold, 1 << 30)) and bool(mallopt(m_mmap_threshold, 32 << 20))


def _loaded_openblas_libraries() -> list[ctypes.CDLL]:
    """OpenBLAS libraries already loaded in this process that can set their thread count (Linux only)."""
    if not sys.platform.startswith("linux"):
        return []
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line})
    except OSError:
        return []
    libraries = []
    for path in paths:
        try:
            library = ctypes.CDLL(path)
            library.openblas_set_num_threads_local.restype = ctypes.c_int
            libraries.append(library)
        except (OSError, AttributeError):
            continue
    return libraries


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run BLAS single-threaded in this thread for the duration (best effort; a no-op where unsupported).

    SciPy's L-BFGS-B calls BLAS on 5x5 matrices hundreds of times per fit. With OpenBLAS's worker threads on
    a busy machine each call waits for them; measured on a loaded 2-core box, one fit took 1 s instead of
    0.02 s. ``openblas_set_num_threads_local`` changes the calling thread only and is restored on exit.
    """
    libraries = _loaded_openblas_libraries()
    previous = [library.openblas_set_num_threads_local(1) for library in libraries]
    try:
        yield
    finally:
        for library, threads in zip(libraries, previous):
            library.openblas_set_num_threads_local(threads)
