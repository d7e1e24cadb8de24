"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, 2019) — the optimizer of GPT and BERT."""
from __future__ import annotations

import math
from typing import Any

from ..autograd.tensor import Tensor
from ..backend import array_module
from .optimizer import Optimizer, ParamsOrGroups


class AdamW(Optimizer):
    """Adam with decoupled weight decay.

    At step t (counted per parameter, from 1), with gradient g, learning rate η, decay λ:

        θ ← θ − η·λ·θ                                   (decoupled decay: shrink the weights directly)
        m ← β₁·m + (1 − β₁)·g                           (first moment, the momentum)
        v ← β₂·v + (1 − β₂)·g²                          (second moment, per-coordinate scale)
        m̂ = m / (1 − β₁ᵗ),   v̂ = v / (1 − β₂ᵗ)          (bias correction: m, v start at 0)
        θ ← θ − η · m̂ / (√v̂ + ε)

    Why decoupled: adding λθ to the gradient (L2 regularisation, as in plain Adam) would then be divided by
    √v̂, so weights with large gradients would hardly decay. Here every decayed weight shrinks by the same
    factor (1 − ηλ). This is the order and arithmetic of ``torch.optim.AdamW``. Updates are in place and
    use the arrays' own module, so they run unchanged on NumPy and CuPy.

    Args:
        params_or_groups: Parameters, a model, or parameter groups (see :func:`param_groups`).
        lr: η.  betas: (β₁, β₂).  eps: ε.  weight_decay: λ (default 0.01, as torch).
    """

    state_arrays = ("exp_avg", "exp_avg_sq")

    def __init__(self, params_or_groups: ParamsOrGroups, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01) -> None:
        super().__init__(params_or_groups, {"lr": float(lr), "betas": tuple(float(b) for b in betas),
                                            "eps": float(eps), "weight_decay": float(weight_decay)})

    def _check_hyperparameters(self, group: dict[str, Any]) -> None:
        super()._check_hyperparameters(group)
        betas = tuple(group["betas"])
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"AdamW: betas must be two numbers in [0, 1), got {group['betas']}")
        group["betas"] = tuple(float(b) for b in betas)
        if not group["eps"] >= 0.0:
            raise ValueError(f"AdamW: eps must be >= 0, got {group['eps']}")
        if not group["weight_decay"] >= 0.0:
            raise ValueError(f"AdamW: weight_decay must be >= 0, got {group['weight_decay']}")

    def _update(self, param: Tensor, grad: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        xp = array_module(param.data)
        lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        if "exp_avg" not in state:
            state["exp_avg"] = xp.zeros_like(param.data)
            state["exp_avg_sq"] = xp.zeros_like(param.data)
        exp_avg, exp_avg_sq, step = state["exp_avg"], state["exp_avg_sq"], state["step"]

        # >>> exercise: adamw-update
        if weight_decay:
            param.data *= 1.0 - lr * weight_decay
        exp_avg *= beta1
        exp_avg += (1.0 - beta1) * grad
        exp_avg_sq *= beta2
        exp_avg_sq += (1.0 - beta2) * (grad * grad)

        bias_correction1 = 1.0 - beta1**step
        bias_correction2 = 1.0 - beta2**step
        denominator = xp.sqrt(exp_avg_sq)
        denominator /= math.sqrt(bias_correction2)
        denominator += eps
        param.data -= (lr / bias_correction1) * (exp_avg / denominator)
        # <<< exercise
