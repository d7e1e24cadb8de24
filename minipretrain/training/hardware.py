"""The machine's measured matmul peak, for model-FLOPs utilisation (MFU).

MFU = (model FLOPs per token × tokens per second) / peak FLOP/s. The peak is not a datasheet number but the
best rate this machine reaches on a large float32 matmul with the array module in use — the honest
ceiling for a NumPy/CuPy program. It is measured once and cached in ``~/.cache/minipretrain/peak.json``
(``MINIPRETRAIN_CACHE_DIR`` moves it), keyed by device, dtype, BLAS threads and a description of the
machine. A peak measured while other work ran is too low (and MFU too high): delete the file to measure again.
"""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from ..backend import module_for


def _cache_file() -> Path:
    root = os.environ.get("MINIPRETRAIN_CACHE_DIR") or Path.home() / ".cache" / "minipretrain"
    return Path(root) / "peak.json"


#: The matrix size of the GPU peak: large enough that the chip, not the launch, sets the time.
GPU_PEAK_SIZE = 4096


def gpu_name() -> str:
    """The name of CUDA device 0 (as the driver reports it)."""
    name = module_for("cuda").cuda.runtime.getDeviceProperties(0)["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def _machine_key(device: str, dtype: str) -> str:
    if device == "cuda":  # a GPU's peak is the GPU's, whatever the host
        return f"cuda|{dtype}|{gpu_name()}"
    # The BLAS thread count changes the peak (one core or all), so it is part of what was measured.
    threads = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or "default"
    return (f"{device}|{dtype}|{platform.machine()}|{platform.processor()}|{os.cpu_count()} cores|"
            f"{threads} BLAS threads|numpy {np.__version__}")


def measure_matmul_peak(device: str = "cpu", dtype: str = "float32", size: int | None = None,
                        repeats: int = 5) -> float:
    """Best observed FLOP/s of a ``size``×``size`` matmul (2·size³ FLOPs) over ``repeats`` timings.

    On the CPU one matmul per timing (1024², after one warm-up). On a GPU a single small matmul measures the
    launch and the sync, not the chip: there it is ``GPU_PEAK_SIZE``² (4096²), three warm-up runs (clocks,
    cuBLAS handles and kernels), and each timing covers ten back-to-back matmuls between two synchronisations.
    """
    on_gpu = device == "cuda"
    size = size or (GPU_PEAK_SIZE if on_gpu else 1024)
    per_timing, warmups = (10, 3) if on_gpu else (1, 1)
    xp = module_for(device)
    rng = np.random.default_rng(0)
    a = xp.asarray(rng.standard_normal((size, size)).astype(dtype))
    b = xp.asarray(rng.standard_normal((size, size)).astype(dtype))
    best = float("inf")
    for run in range(warmups + repeats):
        if on_gpu:
            xp.cuda.Stream.null.synchronize()
        start = time.perf_counter()
        for _ in range(per_timing):
            c = a @ b
        if on_gpu:
            xp.cuda.Stream.null.synchronize()
        if run >= warmups:
            best = min(best, (time.perf_counter() - start) / per_timing)
    del c
    return 2.0 * size**3 / best


def matmul_peak_flops(device: str = "cpu", dtype: str = "float32") -> float:
    """The cached peak for this machine, measuring it the first time."""
    path = _cache_file()
    key = _machine_key(device, dtype)
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError):
        cached = {}
    if key not in cached:
        cached[key] = measure_matmul_peak(device, dtype)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(cached, indent=1))
        except OSError:
            pass  # a read-only home only costs a re-measurement next time
    return float(cached[key])
