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
        xp = array_module(x)
        mean = x.mean(axis=-1, keepdims=True)
        centered = x - mean
        rstd = 1.0 / xp.sqrt((centered * centered).mean(axis=-1, keepdims=True) + eps)
        x_hat = centered * rstd
        ctx.save_for_backward(x_hat, rstd, weight)
        out = x_hat
        if weight is not None:
            out = out * weight
        if bias is not None:
            out = out + bias
        return out

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any, Any, Any]:
        x_hat, rstd, weight = ctx.saved
        # >>> exercise: layer-norm-backward
        leading = tuple(range(grad.ndim - 1))
        # (5) y = x̂·γ + β: dγ = Σ dy·x̂ and dβ = Σ dy over every leading axis; dx̂ = dy·γ
        grad_weight = (grad * x_hat).sum(axis=leading) if ctx.needs_input_grad[1] else None
        grad_bias = grad.sum(axis=leading) if ctx.needs_input_grad[2] else None
        g = grad * weight if weight is not None else grad
        grad_x = None
        if ctx.needs_input_grad[0]:
            through_mean = g.mean(axis=-1, keepdims=True)  # term 2: μ in (1)-(2) moves every c by the same amount
            through_rstd = x_hat * (g * x_hat).mean(axis=-1, keepdims=True)  # term 3: r in (3) rescales every x̂
            grad_x = rstd * (g - through_mean - through_rstd)  # term 1, g·r: the direct path through (4)
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
