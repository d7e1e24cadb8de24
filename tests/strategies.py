"""Hypothesis strategies for the engine's tests (in the spirit of minitorch's ``strategies.py``).

Gradient checks compare a backward with central differences (x ± ε, ε = 1e-6), so the drawn values must
keep ε away from the points where an op is not differentiable:
    relu at 0 and max at ties    -> ``spaced_arrays``: distinct values on a grid, at least ``gap`` apart
    log, sqrt, division by x     -> ``arrays(..., away_from_zero=margin)``: |x| >= margin
Shapes stay small (at most a few dozen elements) because a gradient check runs the op twice per element.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

_FLOATS = dict(allow_nan=False, allow_infinity=False, allow_subnormal=False)


def shapes(min_dims: int = 1, max_dims: int = 3, min_side: int = 1, max_side: int = 4) -> st.SearchStrategy:
    """Array shapes, e.g. (3,), (2, 1, 4)."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


@st.composite
def broadcastable_shapes(draw: Any, max_dims: int = 3, max_side: int = 4) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Two shapes that broadcast together, with size-1 axes and rank differences, e.g. ((2, 3), (4, 1, 3)).

    Built from a full shape: each operand keeps a suffix of it (a rank difference) and may shrink any kept
    axis to 1 (a stretched axis). Either operand may be the smaller one.
    """
    full = draw(shapes(min_dims=1, max_dims=max_dims, max_side=max_side))

    def operand() -> tuple[int, ...]:
        rank = draw(st.integers(0, len(full)))
        kept = full[len(full) - rank:]
        return tuple(1 if draw(st.booleans()) else size for size in kept)

    return operand(), operand()


def arrays(shape: Any, low: float = -2.0, high: float = 2.0, away_from_zero: float = 0.0) -> st.SearchStrategy:
    """float64 arrays of ``shape`` with every element drawn by hypothesis from [low, high].

    With ``away_from_zero=m`` each value x is moved to sign(x)·(m + |x|), so |x| >= m (for log, sqrt, 1/x).
    ``fill=st.nothing()`` makes hypothesis draw every element (no long runs of one repeated fill value).
    """
    base = hnp.arrays(np.float64, shape, elements=st.floats(low, high, **_FLOATS), fill=st.nothing())
    if not away_from_zero:
        return base
    return base.map(lambda x: np.where(x >= 0, 1.0, -1.0) * (away_from_zero + np.abs(x)))


def positive_arrays(shape: Any, low: float = 0.1, high: float = 3.0) -> st.SearchStrategy:
    """float64 arrays with values in [low, high], low > 0 (inputs of log and sqrt)."""
    return hnp.arrays(np.float64, shape, elements=st.floats(low, high, **_FLOATS), fill=st.nothing())


@st.composite
def spaced_arrays(draw: Any, shape: Any, gap: float = 0.05) -> np.ndarray:
    """float64 arrays whose elements are all distinct, at least ``gap`` apart and at least gap/2 from 0.

    Values are (k + ½)·gap for distinct integers k drawn by hypothesis: no ties for max, no zeros for relu,
    so x ± ε (ε = 1e-6) never crosses a kink.
    """
    size = int(np.prod(shape))
    ks = draw(hnp.arrays(np.int64, (size,), elements=st.integers(-2 * size - 8, 2 * size + 8), unique=True))
    return ((ks + 0.5) * gap).reshape(shape)


def axes_for(ndim: int) -> st.SearchStrategy:
    """An ``axis`` argument for a reduction over ``ndim`` axes: None, one int (maybe negative) or a tuple."""
    if ndim == 0:
        return st.none()
    single = st.integers(-ndim, ndim - 1)
    several = st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(tuple)
    return st.one_of(st.none(), single, several)


@st.composite
def padding_masks(draw: Any, batch: int, keys: int, causal: bool = False) -> np.ndarray:
    """A (batch, keys) bool key-padding mask (True = real token) where every query row keeps a key.

    Without ``causal`` any non-empty set of keys will do. With ``causal`` query 0 (lined up with key
    keys - Tq) can only see the first keys, so key 0 is always kept: then every query sees at least key 0.
    """
    mask = draw(hnp.arrays(np.bool_, (batch, keys)))
    for row in range(batch):
        if causal:
            mask[row, 0] = True
        elif not mask[row].any():
            mask[row, draw(st.integers(0, keys - 1))] = True
    return mask


@st.composite
def right_padding_masks(draw: Any, batch: int, keys: int) -> np.ndarray:
    """A (batch, keys) mask as a tokenizer makes it: each sequence is its first n >= 1 tokens, then padding."""
    lengths = draw(st.lists(st.integers(1, keys), min_size=batch, max_size=batch))
    return np.arange(keys)[None, :] < np.array(lengths)[:, None]


@st.composite
def near_one_hot_logits(draw: Any, rows: int, classes: int, max_scale: float = 30.0) -> np.ndarray:
    """(rows, classes) logits in [-max_scale, max_scale] where one class per row dominates.

    Each row is small noise, with a drawn "hot" class raised to +scale and, sometimes, others pushed to
    -scale: softmax is then within e^-scale of one-hot (saturated), where a sloppy backward loses precision.
    """
    scale = draw(st.floats(1.0, max_scale))
    logits = draw(arrays((rows, classes), -1.0, 1.0))
    hot = draw(st.lists(st.integers(0, classes - 1), min_size=rows, max_size=rows))
    cold = draw(hnp.arrays(np.bool_, (rows, classes)))
    logits = np.where(cold, -scale + logits, logits)
    logits[np.arange(rows), hot] = scale
    return logits


@st.composite
def tiny_variance_rows(draw: Any, shape: Any) -> np.ndarray:
    """Layer-norm inputs whose rows have a tiny spread (std 1e-4 .. 1e-2) around an offset up to ±10.

    With σ² far below layer norm's ε = 1e-5 the output is ≈ (x - μ)/√ε: a large slope (~316) that the
    backward must get right without the variance term cancelling.
    """
    offset = draw(st.floats(-10.0, 10.0))
    spread = draw(st.sampled_from([1e-4, 1e-3, 1e-2]))
    noise = draw(arrays(shape, -1.0, 1.0))
    return offset + spread * noise
