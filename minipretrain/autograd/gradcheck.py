"""Numerical gradient checking: does an op's hand-written backward agree with finite differences?

For a function f and a *random* upstream gradient u, the scalar L = Σ u ⊙ f(x) has
    dL/dxᵢ ≈ (L(x + εeᵢ) - L(x - εeᵢ)) / 2ε      (central difference, error O(ε²)).
A random u (not ones, i.e. not ``f(x).sum()``) makes sure every output element's gradient is exercised with
a different weight, so a backward that mixes up output positions cannot pass by symmetry.

In float64 with ε = 1e-6 the truncation error is about ε²·|f'''| ≈ 1e-12 and the rounding error about
1e-16·|L|/ε ≈ 1e-10·|L|, so a correct backward agrees to roughly 1e-7 relative; the defaults below leave a
small margin over that and no more.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..backend import array_module, to_host
from .grad_mode import no_grad
from .tensor import Tensor


class GradcheckError(AssertionError):
    """The analytic and numerical gradients disagree beyond tolerance."""


@dataclass
class InputReport:
    """How well the gradient of one input agreed."""

    index: int
    shape: tuple[int, ...]
    checked_elements: int
    max_abs_error: float
    max_rel_error: float
    worst_element: tuple[int, ...]
    analytic: float
    numerical: float


@dataclass
class GradcheckReport:
    """The outcome for every input that requires a gradient."""

    inputs: list[InputReport] = field(default_factory=list)
    passed: bool = True

    def __str__(self) -> str:
        lines = [f"gradcheck {'passed' if self.passed else 'FAILED'}"]
        for r in self.inputs:
            lines.append(
                f"  input {r.index} {r.shape}: {r.checked_elements} elements, max abs err {r.max_abs_error:.2e}, "
                f"max rel err {r.max_rel_error:.2e} at {r.worst_element}"
            )
        return "\n".join(lines)



def central_differences(objective: Callable[[], float], flat: Any, positions: Any, eps: float) -> np.ndarray:
    """d objective / d flat[p] ≈ (f(x + eps·e_p) - f(x - eps·e_p)) / (2 eps) for each p in ``positions``.

    ``flat`` is a 1-D *view* of the input, perturbed in place and restored; the error is O(eps²). The one
    numerical derivative of the project: ``gradcheck`` and the course's grader both use it.
    """
    numerical = np.empty(len(positions))
    for n, position in enumerate(positions):
        original = float(flat[position])
        flat[position] = original + eps
        plus = objective()
        flat[position] = original - eps
        minus = objective()
        flat[position] = original
        numerical[n] = (plus - minus) / (2 * eps)
    return numerical

def gradcheck(
    fn: Callable[..., Tensor],
    *inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-7,
    rtol: float = 1e-6,
    max_elements: int = 2000,
    seed: int = 0,
    raise_on_failure: bool = True,
) -> GradcheckReport:
    """Compare the backward of ``fn`` with float64 central differences, input by input.

    Args:
        fn: a function of ``inputs`` returning a Tensor; it must be deterministic (re-seed any dropout inside).
        inputs: Tensors (those with ``requires_grad=True`` are checked, and must be float64) or constants.
        eps: the finite-difference step.
        atol, rtol: an element passes when |analytic - numerical| ≤ atol + rtol·|numerical|.
        max_elements: inputs with more elements are checked on a seeded random subset of this many.
        seed: fixes the upstream gradient and the subset.
        raise_on_failure: raise ``GradcheckError`` naming the input and element that failed.

    Returns:
        A ``GradcheckReport`` with the worst absolute and relative error of every checked input.
    """
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True, so there is nothing to check")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(
                f"gradcheck: input {i} has dtype {inputs[i].dtype}; finite differences need float64 "
                "(make it with dtype=np.float64)"
            )
    rng = np.random.default_rng(seed)
    for i in checked:
        inputs[i].grad = None
    out = fn(*inputs)
    if not isinstance(out, Tensor) or not out.requires_grad:
        raise ValueError("gradcheck: fn must return a Tensor that depends on the checked inputs")
    xp = array_module(out.data)
    upstream = xp.asarray(rng.standard_normal(out.shape))
    out.backward(upstream)

    def objective() -> float:
        with no_grad():
            return float((fn(*inputs).data * upstream).sum())

    report = GradcheckReport()
    for i in checked:
        x = inputs[i]
        analytic = to_host(x.grad if x.grad is not None else xp.zeros_like(x.data)).reshape(-1)
        if not x.data.flags.c_contiguous:
            # reshape(-1) of a strided view (e.g. a transpose) is a copy, and perturbing a copy would leave the
            # input unchanged (every numerical derivative 0). A contiguous copy of the same values avoids that.
            x.data = array_module(x.data).ascontiguousarray(x.data)
        flat = x.data.reshape(-1)  # a view: writing into it perturbs the input in place
        if x.size > max_elements:
            positions = np.sort(rng.choice(x.size, size=max_elements, replace=False))
        else:
            positions = np.arange(x.size)
        numerical = central_differences(objective, flat, positions, eps)
        picked = analytic[positions]
        abs_error = np.abs(picked - numerical)
        rel_error = abs_error / np.maximum(np.abs(numerical), 1e-12)
        excess = abs_error - (atol + rtol * np.abs(numerical))
        worst = int(np.argmax(excess)) if len(excess) else 0
        worst_index = tuple(int(v) for v in np.unravel_index(positions[worst], x.shape)) if x.size else ()
        report.inputs.append(InputReport(
            index=i, shape=x.shape, checked_elements=len(positions),
            max_abs_error=float(abs_error.max(initial=0.0)), max_rel_error=float(rel_error.max(initial=0.0)),
            worst_element=worst_index, analytic=float(picked[worst]) if len(picked) else 0.0,
            numerical=float(numerical[worst]) if len(numerical) else 0.0,
        ))
        if len(excess) and excess[worst] > 0:
            report.passed = False
            if raise_on_failure:
                raise GradcheckError(
                    f"gradcheck failed for input {i} (shape {x.shape}) at element {worst_index}: analytic "
                    f"{picked[worst]:.10g}, numerical {numerical[worst]:.10g}, |diff| {abs_error[worst]:.3g} > "
                    f"atol {atol:g} + rtol {rtol:g}·|numerical|\n{report}"
                )
    for i in checked:
        inputs[i].grad = None
    return report
