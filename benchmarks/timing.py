"""The timing rule every benchmark here uses: warm up, then the median of repeated calls."""
from __future__ import annotations

import statistics
import time
from typing import Callable


def median_seconds(step: Callable[[], object], steps: int, warmup: int = 3) -> float:
    """Median wall-clock seconds of ``step()`` over ``steps`` calls, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
