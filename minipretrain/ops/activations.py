"""GELU in its two published forms: the tanh approximation (GPT-2) and the exact erf form (BERT)."""
from __future__ import annotations

import contextlib
import math
from typing import Any

from ..autograd.function import Context, Function
from ..backend import array_module
from . import elementwise as ew

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _erf(x: Any) -> Any:
    if array_module(x).__name__ == "cupy":  # pragma: no cover - needs a GPU
        from cupyx.scipy.special import erf
    else:
        from scipy.special import erf
    return erf(x)


class GeluTanh(Function):
    """GELU, tanh approximation (Hendrycks & Gimpel; GPT-2's ``gelu_new``), computed through the sigmoid.

    y = ½x(1 + tanh u) with u = √(2/π)(x + 0.044715x³), and ½(1 + tanh u) = σ(2u) = 1/(1 + e^(-2u)):
    an exp is cheaper than a tanh (~1.6x in NumPy) and σ keeps its relative precision where 1 + tanh u cancels.
    Forward: (1) w = -2u = -2√(2/π)(x + 0.044715x³);  (2) s = 1/(1 + e^w) = σ(2u);  (3) y = x·s.
    dy/dx = s  [term 1: the x in (3)]  +  x · s(1 - s) · 2√(2/π)(1 + 3·0.044715x²)
            [term 2: through s: (3) -> (2) gives dσ = σ(1 - σ), (2) -> (1) gives d(2u)/dx].
    """

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        # Built up in place (these arrays are B·T·4C; a chain of temporaries made GELU the slowest op of a step).
        xp = array_module(x)
        s = x * x
        s *= -2 * 0.044715 * _SQRT_2_OVER_PI
        s -= 2 * _SQRT_2_OVER_PI
        s *= x  # (1) w = -2u
        with _overflow_to_infinity(xp):  # x ≲ -10 (float32): e^w = inf, so s = 1/inf = 0, the exact limit
            xp.exp(s, out=s)
        s += 1
        xp.reciprocal(s, out=s)  # (2) s = σ(2u)
        ctx.save_for_backward(x, s)
        return x * s  # (3)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any]:
        x, s = ctx.saved
        # >>> exercise: gelu-backward
        # In place, as the forward: term 2 first (two temporaries), then term 1, then the chain rule.
        derivative = x * x
        derivative *= 2 * 3 * 0.044715 * _SQRT_2_OVER_PI
        derivative += 2 * _SQRT_2_OVER_PI  # (1) d(2u)/dx = 2√(2/π)(1 + 3·0.044715x²)
        derivative *= x  # (3) the x multiplying s
        slope = 1 - s
        slope *= s  # (2) ds/d(2u) = s(1 - s)
        derivative *= slope  # term 2: x·s(1 - s)·d(2u)/dx
        derivative += s  # + term 1
        derivative *= grad  # chain rule: dL/dx = dy/dx · dL/dy
        return (derivative,)
        # <<< exercise


def _overflow_to_infinity(xp: Any) -> Any:
    """NumPy warns when exp overflows to inf; here inf is the intended value (CuPy never warns)."""
    return xp.errstate(over="ignore") if hasattr(xp, "errstate") else contextlib.nullcontext()


class GeluErf(Function):
    """GELU, exact form (BERT):  y = x·Φ(x) = ½x(1 + erf(x/√2)).

    dy/dx = Φ(x) [term 1: d(x)·Φ]  +  x·φ(x) [term 2: x·dΦ],  φ(x) = exp(-x²/2)/√(2π)
    """

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        cdf = 0.5 * (1 + _erf(x * _INV_SQRT_2))
        ctx.save_for_backward(x, cdf)
        return x * cdf

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any]:
        x, cdf = ctx.saved
        # >>> exercise: gelu-backward
        pdf = array_module(x).exp(-0.5 * x * x) * _INV_SQRT_2PI  # φ(x) = Φ'(x)
        return (grad * (cdf + x * pdf),)  # term 1 + term 2
        # <<< exercise


def gelu(x: Any, approximate: str = "tanh") -> Any:
    """GELU: ``approximate="tanh"`` as GPT-2, ``"none"`` for the exact erf form as BERT."""
    if approximate == "tanh":
        return GeluTanh.apply(x)
    if approximate in ("none", "erf"):
        return GeluErf.apply(x)
    raise ValueError(f"gelu: approximate must be 'tanh' or 'none' (exact erf), got {approximate!r}")


def gelu_tanh_reference(x: Any) -> Any:
    """Composed reference: ½x(1 + tanh(√(2/π)(x + 0.044715x³))) from mul, pow, add and tanh."""
    return 0.5 * x * (1.0 + ew.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x**3)))
