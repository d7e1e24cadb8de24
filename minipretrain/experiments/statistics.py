"""Statistics over seeds: a mean with its Student-t interval (also widened by an evaluation sample's error), and a
trailing moving average for curves."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np


def t_interval(values: Sequence[float], confidence: float = 0.95) -> dict[str, float]:
    """Mean, sample standard deviation and the Student-t ``confidence`` interval of the mean over ``values``.

    With one value the interval is undefined (NaN): one seed says nothing about seed-to-seed spread.
    """
    from scipy import stats

    array = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    n = len(array)
    if n == 0:
        return {"mean": float("nan"), "low": float("nan"), "high": float("nan"), "std": float("nan"), "n": 0}
    mean = float(array.mean())
    if n == 1:
        return {"mean": mean, "low": float("nan"), "high": float("nan"), "std": float("nan"), "n": 1}
    std = float(array.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n))
    return {"mean": mean, "low": mean - half, "high": mean + half, "std": std, "n": n}


def format_interval(summary: dict[str, float], digits: int = 3, scale: float = 1.0, signed: bool = False) -> str:
    """``"1.234 [1.200, 1.268]"`` (or just the mean when the interval is undefined); ``signed`` writes every
    number with its sign, for differences (``"+0.003 [-0.001, +0.007]"``)."""
    form = f"{'+' if signed else ''}.{digits}f"
    mean = summary["mean"] * scale
    if not math.isfinite(summary.get("low", float("nan"))):
        return f"{mean:{form}}"
    return f"{mean:{form}} [{summary['low'] * scale:{form}}, {summary['high'] * scale:{form}}]"


def smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing moving average (the first points average what exists so far)."""
    values = np.asarray(values, dtype=np.float64)
    if window <= 1 or len(values) == 0:
        return values
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    out = np.empty_like(values)
    for i in range(len(values)):
        lo = max(0, i + 1 - window)
        out[i] = (cumulative[i + 1] - cumulative[lo]) / (i + 1 - lo)
    return out


def seeds_and_sample_interval(per_window: Any, confidence: float = 0.95) -> dict[str, float]:
    """A per-evaluation-window statistic, ``per_window[seed, window]``, as one mean with an interval that
    covers both sources of chance: the seeds (training) and the evaluation sample (which windows the split
    happens to hold).

    Each seed's value is its mean over the windows. The interval is the Student-t interval over seeds,
    widened by the sample's standard error (the windows' spread / √windows, averaged over seeds; every seed
    reads the same windows, so averaging seeds does not shrink it): half-width √(h_seeds² + (z·se)²), the
    two being independent. With one seed it is undefined (NaN), as :func:`t_interval`'s.
    """
    from scipy import stats

    matrix = np.atleast_2d(np.asarray(per_window, dtype=np.float64))
    seeds = t_interval(matrix.mean(axis=1), confidence)
    windows = matrix.shape[1]
    sample_se = float(np.mean(matrix.std(axis=1, ddof=1) / math.sqrt(windows))) if windows > 1 else 0.0
    seed_half = seeds["high"] - seeds["mean"]
    half = math.sqrt(seed_half ** 2 + (float(stats.norm.ppf(0.5 + confidence / 2)) * sample_se) ** 2)
    return {"mean": seeds["mean"], "low": seeds["mean"] - half, "high": seeds["mean"] + half,
            "seed_half_width": seed_half, "sample_se": sample_se, "n": seeds["n"], "windows": windows}
