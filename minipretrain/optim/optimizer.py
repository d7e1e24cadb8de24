"""The machinery every optimizer shares: parameter groups, per-parameter state, zero_grad, state_dict.

An optimizer holds a list of *parameter groups*, each a dict ``{"params": [...], "lr": ..., ...}`` whose
hyperparameters apply to its parameters (so biases and LayerNorm weights can skip weight decay). Each
parameter has a small state (Adam's moment estimates, SGD's momentum buffer), created at its first update;
a parameter that never received a gradient is never touched and has no state.

``state_dict()`` is a flat ``dict[str, np.ndarray | int | float | str]`` — host NumPy arrays and scalars —
so ``np.savez(path, **optimizer.state_dict())`` writes a checkpoint and
``optimizer.load_state_dict(dict(np.load(path)))`` reads it back, onto the parameters' device.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd.tensor import Tensor
from ..backend import device_of, to_device, to_host
from ..errors import MinipretrainError

ParamsOrGroups = Any  # an iterable of Tensors, an iterable of group dicts, or a model with .parameters()


class OptimizerStateError(MinipretrainError, ValueError):
    """A state dict does not fit this optimizer (other optimizer, parameter count or shapes)."""


def _as_param_list(params: Any) -> list[Tensor]:
    """The unique Tensors of ``params`` (a model, an iterable or a single Tensor), first occurrence first."""
    if hasattr(params, "parameters") and callable(params.parameters):
        params = params.parameters()
    if isinstance(params, Tensor):
        params = [params]
    unique: list[Tensor] = []
    seen: set[int] = set()
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"an optimizer updates Tensors (Parameters), got {type(p).__name__}")
        if not p.requires_grad:
            raise ValueError(f"a parameter of shape {p.shape} does not require a gradient; it cannot be optimised")
        if p.data.dtype.kind != "f":
            raise TypeError(f"an optimizer updates floating tensors, got dtype {p.data.dtype}")
        if id(p) not in seen:  # a tied weight listed twice is one parameter, updated once
            seen.add(id(p))
            unique.append(p)
    return unique


class Optimizer:
    """Base class: subclasses set ``defaults`` (hyperparameters) and implement :meth:`_update`.

    Args:
        params_or_groups: an iterable of Parameters, a model (its ``parameters()``), or a list of dicts
            ``{"params": [...], <hyperparameter>: value, ...}``; missing hyperparameters take ``defaults``.
        defaults: the hyperparameters of this optimizer and their default values.
    """

    #: names of the per-parameter state arrays (besides the integer ``step``), for state_dict.
    state_arrays: tuple[str, ...] = ()

    def __init__(self, params_or_groups: ParamsOrGroups, defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        if hasattr(params_or_groups, "parameters") and callable(params_or_groups.parameters):
            params_or_groups = params_or_groups.parameters()
        items = [params_or_groups] if isinstance(params_or_groups, Tensor) else list(params_or_groups)
        if any(isinstance(g, dict) for g in items) and not all(isinstance(g, dict) for g in items):
            raise TypeError("pass either Parameters or parameter-group dicts, not a mixture")
        groups = items if items and isinstance(items[0], dict) else [{"params": items}]
        self.param_groups: list[dict[str, Any]] = []
        seen: set[int] = set()
        for group in groups:
            unknown = set(group) - {"params"} - set(self.defaults)
            if unknown:
                raise ValueError(f"{type(self).__name__}: unknown hyperparameters {sorted(unknown)} in a parameter "
                                 f"group; known: {sorted(self.defaults)}")
            params = _as_param_list(group["params"])
            for p in params:
                if id(p) in seen:
                    raise ValueError(f"a parameter of shape {p.shape} appears in more than one parameter group")
                seen.add(id(p))
            full = {**self.defaults, **{k: v for k, v in group.items() if k != "params"}, "params": params}
            self._check_hyperparameters(full)
            self.param_groups.append(full)
        if not seen:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        #: per-parameter state, keyed by ``id(parameter)``: {"step": int, <state array name>: array}
        self.state: dict[int, dict[str, Any]] = {}

    # ----------------------------------------------------------------- to override
    def _check_hyperparameters(self, group: dict[str, Any]) -> None:
        if not float(group["lr"]) >= 0.0:
            raise ValueError(f"{type(self).__name__}: lr must be >= 0, got {group['lr']}")

    def _update(self, param: Tensor, grad: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        raise NotImplementedError  # pragma: no cover - abstract

    # ----------------------------------------------------------------- public
    @property
    def params(self) -> list[Tensor]:
        """All parameters, group by group (the order ``state_dict`` numbers them)."""
        return [p for group in self.param_groups for p in group["params"]]

    @property
    def lr(self) -> float:
        """The learning rate of the first group. Setting it sets every group's lr (a schedule's value)."""
        return float(self.param_groups[0]["lr"])

    @lr.setter
    def lr(self, value: float) -> None:
        if not float(value) >= 0.0:
            raise ValueError(f"lr must be >= 0, got {value}")
        for group in self.param_groups:
            group["lr"] = float(value)

    def step(self) -> None:
        """Update, in place, every parameter that has a gradient (parameters whose ``grad`` is None are skipped)."""
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                if param.grad.shape != param.data.shape:
                    raise ValueError(f"gradient of shape {param.grad.shape} for a parameter of shape {param.shape}")
                state = self.state.setdefault(id(param), {"step": 0})
                state["step"] += 1
                # Module.to moves the parameters, not this state: follow them (once, at the first step after).
                for name in self.state_arrays:
                    if name in state and device_of(state[name]) != device_of(param.data):
                        state[name] = to_device(to_host(state[name]), device_of(param.data))
                self._update(param, param.grad, state, group)

    def zero_grad(self) -> None:
        """Forget all gradients (``grad = None``), so the next backward starts from zero and allocates afresh."""
        for param in self.params:
            param.grad = None

    # ----------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """A flat dict of host NumPy arrays and scalars describing hyperparameters and per-parameter state.

        Keys: ``optimizer``; ``num_groups``; ``group.{g}.num_params``, ``group.{g}.{hyperparameter}``;
        ``param.{i}.shape``; ``state.{i}.step`` and ``state.{i}.{array}`` for parameters that have state,
        with i numbering the parameters group by group.
        """
        out: dict[str, Any] = {"optimizer": type(self).__name__, "num_groups": len(self.param_groups)}
        for g, group in enumerate(self.param_groups):
            out[f"group.{g}.num_params"] = len(group["params"])
            for key in self.defaults:
                value = group[key]
                out[f"group.{g}.{key}"] = np.asarray(value, dtype=np.float64) if isinstance(value, tuple) else value
        for i, param in enumerate(self.params):
            out[f"param.{i}.shape"] = np.asarray(param.shape, dtype=np.int64)
            state = self.state.get(id(param))
            if state is None:
                continue
            out[f"state.{i}.step"] = int(state["step"])
            for name in self.state_arrays:
                if state.get(name) is not None:
                    out[f"state.{i}.{name}"] = to_host(state[name]).copy()
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyperparameters and state saved by :meth:`state_dict` (also after ``np.savez``/``np.load``).

        State arrays go to each parameter's device and dtype. Raises :class:`OptimizerStateError` when the
        dict comes from another optimizer, or the group/parameter counts or shapes differ.
        """
        saved_kind = str(_scalar(state_dict.get("optimizer", "")))
        if saved_kind != type(self).__name__:
            raise OptimizerStateError(f"this state dict belongs to {saved_kind or 'an unknown optimizer'!r}, "
                                      f"not {type(self).__name__}")
        num_groups = int(_scalar(state_dict["num_groups"]))
        if num_groups != len(self.param_groups):
            raise OptimizerStateError(f"the state dict has {num_groups} parameter groups, this optimizer "
                                      f"{len(self.param_groups)}")
        for g, group in enumerate(self.param_groups):
            saved_count = int(_scalar(state_dict[f"group.{g}.num_params"]))
            if saved_count != len(group["params"]):
                raise OptimizerStateError(f"group {g}: the state dict has {saved_count} parameters, this optimizer "
                                          f"{len(group['params'])}")
        params = self.params
        for i, param in enumerate(params):
            saved_shape = tuple(int(s) for s in np.asarray(state_dict[f"param.{i}.shape"]).reshape(-1))
            if saved_shape != param.shape:
                raise OptimizerStateError(f"parameter {i}: the state dict has shape {saved_shape}, the parameter "
                                          f"{param.shape}")
        # Everything checked: now change the optimizer (never half-load a mismatched checkpoint).
        for g, group in enumerate(self.param_groups):
            for key, default in self.defaults.items():
                group[key] = _like(default, state_dict[f"group.{g}.{key}"])
        self.state = {}
        for i, param in enumerate(params):
            if f"state.{i}.step" not in state_dict:
                continue
            state: dict[str, Any] = {"step": int(_scalar(state_dict[f"state.{i}.step"]))}
            for name in self.state_arrays:
                key = f"state.{i}.{name}"
                if key in state_dict:
                    array = np.asarray(state_dict[key])
                    if array.shape != param.shape:
                        raise OptimizerStateError(f"{key}: shape {array.shape}, the parameter {param.shape}")
                    state[name] = to_device(array.astype(param.data.dtype, copy=True), device_of(param.data))
            self.state[id(param)] = state

    def __repr__(self) -> str:
        groups = "; ".join(
            f"{len(g['params'])} params, " + ", ".join(f"{k}={g[k]}" for k in self.defaults) for g in self.param_groups
        )
        return f"{type(self).__name__}({groups})"


def _scalar(value: Any) -> Any:
    """A Python scalar from a 0-d array (as ``np.load`` returns) or a scalar."""
    return value.item() if isinstance(value, np.ndarray) and value.ndim == 0 else value


def _like(default: Any, value: Any) -> Any:
    """``value`` converted to the type of ``default`` (tuples of floats, bools, ints, floats)."""
    if isinstance(default, tuple):
        return tuple(float(v) for v in np.asarray(value).reshape(-1))
    value = _scalar(value)
    if isinstance(default, bool):
        return bool(value)
    if isinstance(default, int):
        return int(value)
    return float(value)


def collect_params(model_or_params: Any) -> list[Tensor]:
    """The unique parameters of a model (``parameters()``) or an iterable of Tensors."""
    return _as_param_list(model_or_params)


def param_groups(model_or_params: Any, weight_decay: float) -> list[dict[str, Any]]:
    """Split parameters into a decayed group and a no-decay group, for AdamW.

    A parameter is decayed when its ``decay`` flag is True (minipretrain's ``Parameter``: Linear weight
    matrices). Parameters with ``decay=False`` — biases, LayerNorm gains and shifts, embedding tables — go
    to the group with ``weight_decay=0``. A plain Tensor without the flag is decayed when it has 2 or more
    dimensions (nanoGPT's rule). Empty groups are left out.

    Returns:
        ``[{"params": decayed, "weight_decay": weight_decay}, {"params": others, "weight_decay": 0.0}]``.
    """
    decayed: list[Tensor] = []
    not_decayed: list[Tensor] = []
    for p in _as_param_list(model_or_params):
        decays = getattr(p, "decay", None)
        decays = p.ndim >= 2 if decays is None else bool(decays)
        (decayed if decays else not_decayed).append(p)
    groups = [{"params": decayed, "weight_decay": float(weight_decay)}, {"params": not_decayed, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]
