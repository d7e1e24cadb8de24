"""Stochastic gradient descent with optional (Nesterov) momentum: the baseline optimizer."""
from __future__ import annotations

from typing import Any

from ..autograd.tensor import Tensor
from .optimizer import Optimizer, ParamsOrGroups


class SGD(Optimizer):
    """SGD, with the arithmetic of ``torch.optim.SGD`` (no dampening).

    With gradient g, learning rate η, momentum μ, weight decay λ:

        d ← g + λ·θ                     (L2 weight decay, coupled: it goes through the momentum)
        b ← d              at the first step,   b ← μ·b + d   afterwards      (only when μ > 0)
        d ← d + μ·b        (Nesterov)    or     d ← b        (classical momentum)
        θ ← θ − η·d

    Args:
        params_or_groups: Parameters, a model, or parameter groups.
        lr: η.  momentum: μ in [0, 1).  weight_decay: λ.  nesterov: look ahead along the momentum (needs μ > 0).
    """

    state_arrays = ("momentum_buffer",)

    def __init__(self, params_or_groups: ParamsOrGroups, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False) -> None:
        super().__init__(params_or_groups, {"lr": float(lr), "momentum": float(momentum),
                                            "weight_decay": float(weight_decay), "nesterov": bool(nesterov)})

    def _check_hyperparameters(self, group: dict[str, Any]) -> None:
        super()._check_hyperparameters(group)
        if not 0.0 <= group["momentum"] < 1.0:
            raise ValueError(f"SGD: momentum must lie in [0, 1), got {group['momentum']}")
        if not group["weight_decay"] >= 0.0:
            raise ValueError(f"SGD: weight_decay must be >= 0, got {group['weight_decay']}")
        if group["nesterov"] and group["momentum"] == 0.0:
            raise ValueError("SGD: nesterov=True needs momentum > 0")

    def _update(self, param: Tensor, grad: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        lr, momentum, weight_decay = group["lr"], group["momentum"], group["weight_decay"]
        direction = grad + weight_decay * param.data if weight_decay else grad
        if momentum:
            buffer = state.get("momentum_buffer")
            if buffer is None:
                buffer = state["momentum_buffer"] = direction.copy()
            else:
                buffer *= momentum
                buffer += direction
            direction = direction + momentum * buffer if group["nesterov"] else buffer
        param.data -= lr * direction
