"""One contiguous buffer for all parameters, another for all gradients, and AdamW over them in a few calls.

Why: a per-parameter optimizer makes ~10 NumPy calls for each of a model's ~50 parameters every step (about
500 small calls, each with its own temporaries), and data-parallel training wants the whole gradient in one
array so that a single ``Allreduce`` sends it. :class:`FlatParameters` copies every parameter into one buffer
and makes ``param.data`` a *view* of its segment; gradients get segments of a second buffer. The model is
unchanged (its ops read ``param.data`` as before); an update of the buffer is an update of every parameter.

The autograd engine assigns fresh arrays to ``.grad`` (it never writes into an existing one), so
:meth:`FlatParameters.collect_grads` copies each new gradient into its segment and makes ``.grad`` the view
again: one copy of the gradient per step, checked by identity, so nothing else has to know about the buffer.
Anything that replaces ``param.data`` (``Module.load_state_dict``) is noticed the same way and copied back in
(:meth:`FlatParameters.rebind`), so the buffer can never silently drift from the model.

:class:`FlatAdamW` is ``AdamW`` with exactly the same arithmetic, in the same order, done once per parameter
group over the group's contiguous slice, with two scratch buffers instead of fresh temporaries: its updates
equal ``AdamW``'s bit for bit. Its ``state_dict`` has ``AdamW``'s format, so checkpoints are interchangeable.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..autograd.tensor import Tensor
from ..backend import array_module, device_of
from .adamw import AdamW
from .clip import CLIP_EPS
from .optimizer import OptimizerStateError, ParamsOrGroups, collect_params


class FlatParameters:
    """Parameters as views of one buffer (``data``), their gradients as views of another (``grad``).

    Args:
        params: the parameters, all of one floating dtype and on one device; their order is the buffers'
            order (a tied parameter listed twice is one segment).

    Attributes:
        data, grad: the two 1-D buffers (NumPy or CuPy), ``size`` elements each.
        params: the parameters; ``slices[i]`` is parameter i's segment of both buffers.
    """

    def __init__(self, params: Sequence[Tensor]) -> None:
        self.params = collect_params(list(params))
        dtypes = {p.data.dtype for p in self.params}
        devices = {device_of(p.data) for p in self.params}
        if len(dtypes) != 1 or len(devices) != 1:
            raise TypeError(f"FlatParameters needs parameters of one dtype on one device, got dtypes "
                            f"{sorted(map(str, dtypes))} on {sorted(devices)}; cast or move the model first")
        xp = array_module(self.params[0].data)
        self.xp = xp
        self.slices: list[slice] = []
        offset = 0
        for p in self.params:
            self.slices.append(slice(offset, offset + p.size))
            offset += p.size
        self.size = offset
        self.data = xp.empty(self.size, dtype=self.params[0].data.dtype)
        self.grad = xp.zeros(self.size, dtype=self.params[0].data.dtype)
        self._data_views = [self.data[s].reshape(p.shape) for p, s in zip(self.params, self.slices)]
        self._grad_views = [self.grad[s].reshape(p.shape) for p, s in zip(self.params, self.slices)]
        for p, view, grad_view in zip(self.params, self._data_views, self._grad_views):
            view[...] = p.data
            p.data = view
            if p.grad is not None:
                grad_view[...] = p.grad
                p.grad = grad_view

    def rebind(self) -> None:
        """Copy back into the buffer any parameter whose ``.data`` was replaced (e.g. by ``load_state_dict``)."""
        for p, view in zip(self.params, self._data_views):
            if p.data is view:
                continue
            if p.data.shape != view.shape or device_of(p.data) != device_of(view):
                raise ValueError(
                    f"a parameter of the flat buffer now has shape {p.data.shape} on {device_of(p.data)}, its segment "
                    f"{view.shape} on {device_of(view)}; move or reshape the model before building the optimizer"
                )
            view[...] = p.data
            p.data = view

    def collect_grads(self) -> int:
        """Make every ``.grad`` its segment of ``grad`` (copying new gradients in; none counts as zero).

        Returns:
            How many parameters had a gradient before the call (a rank whose shard had no target has none,
            and contributes zeros to the all-reduce).
        """
        present = 0
        for p, view in zip(self.params, self._grad_views):
            if p.grad is view:
                present += 1
                continue
            if p.grad is None:
                view.fill(0)
            else:
                view[...] = p.grad
                present += 1
            p.grad = view
        return present

    def zero_grad(self) -> None:
        """Forget every gradient (``grad = None``), as ``Optimizer.zero_grad``; the buffer is refilled on collect."""
        for p in self.params:
            p.grad = None

    def grad_norm(self, owned: range | None = None, comm: Any = None) -> float:
        """‖g‖ over the gradient buffer, summed exactly as :func:`clip_grad_norm` sums it.

        One square of the whole buffer, then a float64 sum per segment added in order (clip_grad_norm's
        order): a single sum over the buffer would be pairwise over other blocks and differ in the last ulp,
        and so would every clipped update after it. ~50 sums of views cost ~0.1 ms a step.

        ``owned`` (with ``comm``; the sharded optimizer, :mod:`minipretrain.distributed.optimizer_shard`):
        this rank holds valid gradients only for these parameters. It sums their segments, the ranks add
        their vectors of per-segment sums (each segment's sum comes from one rank, the others add exact
        zeros) and the norm is added up in the same order: the same float as unsharded.
        """
        xp = self.xp
        if owned is None:
            squares = xp.square(self.grad)
            return math.sqrt(float(sum(xp.sum(squares[s], dtype=xp.float64) for s in self.slices)))
        sums = [0.0] * len(self.slices)
        if len(owned):
            region = self.region(owned)
            squares = xp.square(self.grad[region])
            for i in owned:
                s = self.slices[i]
                sums[i] = float(xp.sum(squares[s.start - region.start:s.stop - region.start], dtype=xp.float64))
        return math.sqrt(sum(comm.allreduce_scalars(*sums)))

    def region(self, owned: range) -> slice:
        """The buffer elements of the parameters ``owned`` (consecutive indices)."""
        if not len(owned):
            return slice(0, 0)
        return slice(self.slices[owned[0]].start, self.slices[owned[-1]].stop)

    def clip_grad_norm(self, max_norm: float, owned: range | None = None, comm: Any = None) -> float:
        """:func:`~minipretrain.optim.clip_grad_norm` on the buffer: one reduction, one in-place scale (of the
        ``owned`` parameters' gradients only, when sharded: see :meth:`grad_norm`)."""
        if not max_norm > 0:
            raise ValueError(f"clip_grad_norm: max_norm must be > 0, got {max_norm}")
        self.collect_grads()
        total_norm = self.grad_norm(owned, comm)
        if math.isfinite(total_norm) and total_norm > max_norm:
            grad = self.grad if owned is None else self.grad[self.region(owned)]
            grad *= max_norm / (total_norm + CLIP_EPS)  # in place is safe: every segment is ours alone
        return total_norm


class FlatAdamW(AdamW):
    """:class:`AdamW` over one flat buffer: same arguments, same updates (bit for bit), same state dict.

    Parameter groups (the decayed and the no-decay group of :func:`param_groups`) become contiguous slices,
    so a step is ~15 vectorised calls per group whatever the number of parameters. Every parameter is
    updated every step; a step where only some parameters got a gradient is refused (``AdamW`` would skip
    the others; here that would silently differ), a step where none did is skipped, as ``AdamW`` does.
    """

    def __init__(self, params_or_groups: ParamsOrGroups, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01) -> None:
        super().__init__(params_or_groups, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        self.flat = FlatParameters(self.params)
        xp = self.flat.xp
        self.exp_avg = xp.zeros_like(self.flat.data)
        self.exp_avg_sq = xp.zeros_like(self.flat.data)
        self._scratch = (xp.empty_like(self.flat.data), xp.empty_like(self.flat.data))
        self.steps_taken = 0
        self.group_slices: list[slice] = []
        start = 0
        for group in self.param_groups:
            stop = start + sum(p.size for p in group["params"])
            self.group_slices.append(slice(start, stop))
            start = stop

    def zero_grad(self) -> None:
        self.flat.zero_grad()

    def step(self, region: slice | None = None) -> None:
        """One AdamW update of every parameter, group slice by group slice, in place; with ``region`` (a slice
        of the buffer: this rank's share under the sharded optimizer) only the parameters inside it."""
        self.flat.rebind()
        missing = sum(p.grad is None for p in self.flat.params)
        if missing == len(self.flat.params):
            return
        if missing:
            raise ValueError(
                f"FlatAdamW: only {len(self.flat.params) - missing} of {len(self.flat.params)} parameters got a "
                "gradient this step; it updates all of them together. Use AdamW for a model with parameters the "
                "loss does not reach."
            )
        self.flat.collect_grads()
        self.steps_taken += 1
        for group, span in zip(self.param_groups, self.group_slices):
            if region is not None:
                span = slice(max(span.start, region.start), min(span.stop, region.stop))
            if span.stop > span.start:
                self._update_slice(span, group)

    def _update_slice(self, span: slice, group: dict[str, Any]) -> None:
        # The same operations, operands and order as AdamW._update (so the results are identical), written
        # into two scratch buffers: (1 − β)·g and g·g, then √v̂ + ε and m / (√v̂ + ε).
        xp = self.flat.xp
        param, grad = self.flat.data[span], self.flat.grad[span]
        exp_avg, exp_avg_sq = self.exp_avg[span], self.exp_avg_sq[span]
        scratch, ratio = self._scratch[0][span], self._scratch[1][span]
        lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        step = self.steps_taken

        if weight_decay:
            param *= 1.0 - lr * weight_decay
        exp_avg *= beta1
        xp.multiply(grad, 1.0 - beta1, out=scratch)
        exp_avg += scratch
        exp_avg_sq *= beta2
        xp.multiply(grad, grad, out=scratch)
        scratch *= 1.0 - beta2
        exp_avg_sq += scratch

        bias_correction1 = 1.0 - beta1**step
        bias_correction2 = 1.0 - beta2**step
        denominator = xp.sqrt(exp_avg_sq, out=scratch)
        denominator /= math.sqrt(bias_correction2)
        denominator += eps
        xp.divide(exp_avg, denominator, out=ratio)
        ratio *= lr / bias_correction1
        param -= ratio

    # ----------------------------------------------------------------- checkpoints, in AdamW's format
    def state_dict(self) -> dict[str, Any]:
        self._expose_state()
        out = super().state_dict()
        out["optimizer"] = AdamW.__name__
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        kind = state_dict.get("optimizer", "")
        kind = kind.item() if hasattr(kind, "item") else kind
        if str(kind) != AdamW.__name__:
            raise OptimizerStateError(f"this state dict belongs to {kind or 'an unknown optimizer'!r}, not AdamW")
        saved = {**state_dict, "optimizer": type(self).__name__}
        steps = {int(saved[f"state.{i}.step"]) for i in range(len(self.params)) if f"state.{i}.step" in saved}
        with_state = sum(f"state.{i}.step" in saved for i in range(len(self.params)))
        if len(steps) > 1 or with_state not in (0, len(self.params)):
            raise OptimizerStateError(
                "FlatAdamW needs every parameter at the same step; this state dict has parameters at steps "
                f"{sorted(steps)} ({with_state} of {len(self.params)} with state): load it into AdamW instead"
            )
        super().load_state_dict(saved)  # validates groups and shapes, fills self.state with fresh arrays
        self.steps_taken = steps.pop() if steps else 0
        self.exp_avg.fill(0)
        self.exp_avg_sq.fill(0)
        for p, span in zip(self.flat.params, self.flat.slices):
            state = self.state.get(id(p))
            if state is not None:
                self.exp_avg[span] = state["exp_avg"].reshape(-1)
                self.exp_avg_sq[span] = state["exp_avg_sq"].reshape(-1)
        self._expose_state()

    def _expose_state(self) -> None:
        """Point ``self.state`` (AdamW's per-parameter view of the moments) at segments of the flat moments."""
        self.state = {}
        if self.steps_taken == 0:
            return
        for p, span in zip(self.flat.params, self.flat.slices):
            self.state[id(p)] = {"step": self.steps_taken, "exp_avg": self.exp_avg[span].reshape(p.shape),
                                 "exp_avg_sq": self.exp_avg_sq[span].reshape(p.shape)}
