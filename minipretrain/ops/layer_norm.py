"""Layer normalisation over the last axis, fused: one forward, one hand-derived backward."""
from __future__ import annotations

from typing import Any

from ..autograd.function import Context, Function
from ..backend import array_module
from . import elementwise as ew
from . import reduce


class LayerNorm(Function):
    """y = x̂ · γ + β,  x̂ = (x - μ) / √(σ² + ε),  μ and σ² (biased) over the last axis of size D.

    Shapes: x (..., D), γ and β (D,).
    Forward, numbered for the backward:  (1) μ = mean(x);  (2) c = x - μ;  (3) r = 1/√(mean(c²) + ε);
    (4) x̂ = c · r;  (5) y = x̂ · γ + β.
    Backward, with g = dL/dx̂ = dL/dy · γ (from 5):
        dL/dx = r · (g - mean(g) - x̂ · mean(g · x̂))      (means over the last axis)
        dL/dγ = Σ dL/dy · x̂,   dL/dβ = Σ dL/dy          (sums over every leading axis)
    The three terms of dL/dx: g·r is the direct path through (4); -r·mean(g) flows through μ in (1)-(2);
    -r·x̂·mean(g·x̂) flows through r in (3), since ∂r/∂xⱼ = -r³·cⱼ/D.
    """

    @staticmethod
    def forward(ctx: Context, x: Any, weight: Any, bias: Any, eps: float = 1e-5) -> Any:
        # Two (…, D) arrays in all: c (becomes x̂, saved) and the output (first holds c²). Row means are
        # matrix-vector products with a vector of 1/D (BLAS; several times faster than .mean(-1) on rows of 128).
        xp = array_module(x)
        rows = x.reshape(-1, x.shape[-1])
        by_mean = xp.full(x.shape[-1], 1.0 / x.shape[-1], dtype=x.dtype)
        centered = rows - (rows @ by_mean)[:, None]  # (1) μ = x·(1/D), (2) c = x - μ
        out = xp.multiply(centered, centered)
        rstd = out @ by_mean
        rstd += eps
        xp.sqrt(rstd, out=rstd)
        xp.reciprocal(rstd, out=rstd)  # (3) r = 1/√(c²·(1/D) + ε)
        rstd = rstd[:, None]
        centered *= rstd  # (4) x̂ = c·r, in c's buffer
        x_hat = centered
        ctx.save_for_backward(x_hat, rstd, weight, by_mean)
        if weight is not None:  # (5) y = x̂·γ + β, in the output buffer
            xp.multiply(x_hat, weight, out=out)
        else:
            out[...] = x_hat
        if bias is not None:
            out += bias
        return out.reshape(x.shape)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any, Any, Any]:
        x_hat, rstd, weight, by_mean = ctx.saved
        xp = array_module(grad)
        # >>> exercise: layer-norm-backward
        dy = grad.reshape(x_hat.shape)
        scratch = xp.empty_like(x_hat)
        # (5) y = x̂·γ + β: dγ = Σ dy·x̂ and dβ = Σ dy over the rows (vector-matrix products); dx̂ = dy·γ
        grad_weight = grad_bias = None
        if ctx.needs_input_grad[1]:
            grad_weight = xp.ones(dy.shape[0], dtype=dy.dtype) @ xp.multiply(dy, x_hat, out=scratch)
        if ctx.needs_input_grad[2]:
            grad_bias = xp.ones(dy.shape[0], dtype=dy.dtype) @ dy
        grad_x = None
        if ctx.needs_input_grad[0]:
            g = dy * weight if weight is not None else dy.copy()  # g = dL/dx̂, becomes dL/dx in place
            through_mean = g @ by_mean  # term 2: μ in (1)-(2) moves every c by the same amount
            through_rstd = xp.multiply(g, x_hat, out=scratch) @ by_mean  # term 3: r in (3) rescales every x̂
            g -= through_mean[:, None]
            g -= xp.multiply(x_hat, through_rstd[:, None], out=scratch)
            g *= rstd  # term 1, g·r: the direct path through (4); the other two terms are scaled by r as well
            grad_x = g.reshape(grad.shape)
        return grad_x, grad_weight, grad_bias
        # <<< exercise


def layer_norm(x: Any, weight: Any = None, bias: Any = None, eps: float = 1e-5) -> Any:
    """Normalise the last axis of ``x`` to zero mean and unit variance, then scale by ``weight``, shift by ``bias``."""
    size = x.shape[-1]
    for name, param in (("weight", weight), ("bias", bias)):
        if param is not None and tuple(param.shape) != (size,):
            raise ValueError(f"layer_norm: {name} has shape {tuple(param.shape)}, expected ({size},) for input {x.shape}")
    if eps <= 0:
        raise ValueError(f"layer_norm: eps must be positive, got {eps}")
    return LayerNorm.apply(x, weight, bias, eps=eps)


def layer_norm_reference(x: Any, weight: Any = None, bias: Any = None, eps: float = 1e-5) -> Any:
    """Composed reference: (x - mean) / sqrt(var + eps) · weight + bias, from mean, var, sqrt and div."""
    centered = x - reduce.mean(x, axis=-1, keepdims=True)
    out = centered / ew.sqrt(reduce.var(x, axis=-1, keepdims=True) + eps)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out
