"""RMS layer normalisation (T5's ``T5LayerNorm``), fused, with its composed reference beside it.

Shapes: x (..., D), w (D,). No mean is subtracted and there is no bias:

    r = 1 / √(mean(x²) + ε)          (1)  one reciprocal root-mean-square per row
    x̂ = x · r                        (2)
    y = x̂ · w                        (3)

Hugging Face computes mean(x²) in float32 even for half-precision inputs; for float32 and float64 inputs (the
only dtypes here) that is the input's own dtype, so the two agree.
"""
from __future__ import annotations

from typing import Any

from ..autograd.function import Context, Function
from ..backend import array_module
from . import elementwise as ew
from . import reduce


class RMSNorm(Function):
    """y = w · x / √(mean(x²) + ε) over the last axis; see the module docstring for the forward lines (1)-(3)."""

    @staticmethod
    def forward(ctx: Context, x: Any, weight: Any, eps: float = 1e-6) -> Any:
        xp = array_module(x)
        rstd = 1.0 / xp.sqrt((x * x).mean(axis=-1, keepdims=True) + x.dtype.type(eps))  # (1)
        x_hat = x * rstd                                                                 # (2)
        ctx.save_for_backward(x_hat, rstd, weight)
        return x_hat * weight                                                            # (3)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any, Any]:
        x_hat, rstd, weight = ctx.saved
        leading = tuple(range(grad.ndim - 1))
        # (3) y = x̂·w:  dw = Σ_rows dy ⊙ x̂,   g := dx̂ = dy ⊙ w
        grad_weight = (grad * x_hat).sum(axis=leading) if ctx.needs_input_grad[1] else None
        grad_x = None
        if ctx.needs_input_grad[0]:
            g = grad * weight
            # (2)+(1) x̂ = x·r with ∂r/∂xⱼ = -r³xⱼ/D, so the two terms of dx are:
            #   term 1 (through x directly):  r · g
            #   term 2 (through r):           -r · x̂ · mean(g ⊙ x̂)
            grad_x = rstd * (g - x_hat * (g * x_hat).mean(axis=-1, keepdims=True))
        return grad_x, grad_weight


def rms_norm(x: Any, weight: Any, eps: float = 1e-6) -> Any:
    """T5's layer norm: scale each row of ``x`` (..., D) to unit root-mean-square, then multiply by ``weight`` (D,)."""
    size = x.shape[-1]
    if tuple(weight.shape) != (size,):
        raise ValueError(f"rms_norm: weight has shape {tuple(weight.shape)}, expected ({size},) for input {x.shape}")
    if eps <= 0:
        raise ValueError(f"rms_norm: eps must be positive, got {eps}")
    return RMSNorm.apply(x, weight, eps=eps)


def rms_norm_reference(x: Any, weight: Any, eps: float = 1e-6) -> Any:
    """The same from mean, sqrt, div and mul, so autograd derives the gradient on its own."""
    return x / ew.sqrt(reduce.mean(x * x, axis=-1, keepdims=True) + eps) * weight
