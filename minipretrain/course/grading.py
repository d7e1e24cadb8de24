"""Grading a hand-written backward on raw arrays, independently of every other op.

``check_backward`` runs one Function's ``forward`` and ``backward`` directly on float64 NumPy arrays (no
Tensors, no graph), with a random upstream gradient u, and compares the result with central differences of
L = Σ u ⊙ forward(x). Because nothing else is differentiated on the way, a blank in one op cannot fail the
check of another. While ``backward`` runs, ``Function.apply`` is forbidden: a backward that builds a graph and
lets autograd differentiate it has not computed the gradient, it has delegated it.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np

from ..autograd.function import Context, Function
from ..autograd.gradcheck import central_differences
from ..autograd.tensor import Tensor


class GradingError(AssertionError):
    """The analytic gradient of one element disagrees with the numerical one."""

    def __init__(self, message: str, *, input_index: int, element: tuple[int, ...], analytic: float,
                 numerical: float) -> None:
        super().__init__(message)
        self.input_index = input_index
        self.element = element
        self.analytic = analytic
        self.numerical = numerical


class AutogradInBackwardError(AssertionError):
    """A backward called ``Function.apply`` (autograd) instead of computing its gradient with array code."""


@contextmanager
def autograd_forbidden(function: type[Function]) -> Iterator[None]:
    """Make any ``Function.apply`` inside the block raise, naming ``function`` as the culprit."""
    original = Function.__dict__["apply"]

    def refuse(cls: type[Function], *inputs: Any, **options: Any) -> Any:
        raise AutogradInBackwardError(
            f"{function.__name__}.backward called {cls.__name__}.apply: it builds an autograd graph instead of "
            "computing the gradient. Write the gradient with NumPy array operations on ctx.saved."
        )

    Function.apply = classmethod(refuse)  # type: ignore[method-assign]
    try:
        yield
    finally:
        Function.apply = original  # type: ignore[method-assign]


def _forward(function: type[Function], arrays: list[np.ndarray], wrt: tuple[int, ...],
             options: dict[str, Any]) -> tuple[Context, np.ndarray]:
    # The context must say which inputs need a gradient (some backwards skip the others), so it is given
    # stand-in Tensors; forward itself sees only the raw arrays.
    inputs = tuple(Tensor(a, requires_grad=i in wrt) if isinstance(a, np.ndarray) else a
                   for i, a in enumerate(arrays))
    ctx = Context(function, inputs)
    return ctx, np.asarray(function.forward(ctx, *arrays, **options))


def check_backward(function: type[Function], *arrays: Any, wrt: tuple[int, ...] | None = None,
                   options: dict[str, Any] | None = None, eps: float = 1e-6, atol: float = 1e-7,
                   rtol: float = 1e-6, seed: int = 0) -> float:
    """Raise ``GradingError`` at the worst element where ``function.backward`` disagrees with finite differences.

    Tolerances are gradcheck's (float64, ε = 1e-6: truncation ≈ 1e-12, rounding ≈ 1e-10·|L|). Returns the
    largest absolute error seen, for the record.
    """
    options = options or {}
    arrays_list = [np.array(a, dtype=np.float64) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
                   for a in arrays]
    if wrt is None:
        wrt = tuple(i for i, a in enumerate(arrays_list) if isinstance(a, np.ndarray) and a.dtype == np.float64)
    ctx, out = _forward(function, arrays_list, wrt, options)
    upstream = np.random.default_rng(seed).standard_normal(out.shape)
    with autograd_forbidden(function):
        grads = function.backward(ctx, upstream.copy())
    grads = grads if isinstance(grads, tuple) else (grads,)

    def objective() -> float:
        return float((_forward(function, arrays_list, wrt, options)[1] * upstream).sum())

    worst_error = 0.0
    for i in wrt:
        x = arrays_list[i]
        if i >= len(grads) or grads[i] is None:
            raise GradingError(f"{function.__name__}.backward returned no gradient for input {i}",
                               input_index=i, element=(), analytic=float("nan"), numerical=float("nan"))
        analytic = np.asarray(grads[i], dtype=np.float64)
        if analytic.shape != x.shape:
            raise GradingError(f"{function.__name__}.backward: gradient of input {i} has shape {analytic.shape}, "
                               f"the input has {x.shape}", input_index=i, element=(), analytic=float("nan"),
                               numerical=float("nan"))
        # x is a contiguous float64 copy (above), so reshape(-1) is a view the perturbations reach
        numerical = central_differences(objective, x.reshape(-1), np.arange(x.size), eps).reshape(x.shape)
        error = np.abs(analytic - numerical)
        excess = error - (atol + rtol * np.abs(numerical))
        worst = np.unravel_index(int(np.argmax(excess)), x.shape) if x.size else ()
        worst_error = max(worst_error, float(error.max(initial=0.0)))
        if x.size and excess[worst] > 0:
            element = tuple(int(v) for v in worst)
            raise GradingError(
                f"{function.__name__}: input {i} {x.shape} at element {element}: analytic {analytic[worst]:.10g}, "
                f"numerical {numerical[worst]:.10g}", input_index=i, element=element,
                analytic=float(analytic[worst]), numerical=float(numerical[worst]))
    return worst_error
