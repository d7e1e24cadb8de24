"""``Tensor``: an array plus the record of how it was computed, so gradients can flow back through it."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..backend import array_module, check_device, default_device, device_of, module_for, to_device, to_host
from .engine import run_backward

DEFAULT_DTYPE = np.float32


class Tensor:
    """An n-dimensional array (NumPy or CuPy) that can take part in automatic differentiation.

    Attributes:
        data: the values, an ndarray of the active array module.
        grad: dL/d(this tensor) after ``backward()`` (same module, shape and dtype), or None.
        requires_grad: whether operations on this tensor record a graph for ``backward``.

    Floating arrays keep their dtype (float64 stays float64 end to end); Python numbers and lists become
    float32 unless ``dtype`` says otherwise. Integer arrays (token ids) stay integers.
    """

    __array_priority__ = 1000  # make ndarray (op) Tensor defer to Tensor's reflected operators

    def __init__(
        self,
        data: Any,
        requires_grad: bool = False,
        dtype: Any = None,
        device: str | None = None,
    ) -> None:
        if isinstance(data, Tensor):
            data = data.data
        if device is None and not (isinstance(data, np.ndarray) or device_of(data) == "cuda"):
            device = default_device()  # Python numbers and lists go to MINIPRETRAIN_DEVICE; arrays stay put
        if device is not None:
            xp = module_for(device)
            data = to_device(data, device) if hasattr(data, "__array__") or hasattr(data, "get") else data
        else:
            xp = array_module(data)
        is_array = isinstance(data, np.ndarray) or type(data).__module__.startswith("cupy")
        array = xp.asarray(data, dtype=dtype)
        if dtype is None and not is_array and array.dtype.kind == "f":
            array = array.astype(DEFAULT_DTYPE)
        if requires_grad and array.dtype.kind != "f":
            raise TypeError(f"only floating tensors can require gradients, got dtype {array.dtype}")
        self.data = array
        self.grad: Any = None
        self.requires_grad = requires_grad
        self._ctx: Any = None
        self._retains_grad = False

    @classmethod
    def _from_array(cls, array: Any, requires_grad: bool = False) -> Tensor:
        """Wrap an op's output without the checks of ``__init__`` (the hot path of every op)."""
        result = cls.__new__(cls)
        # NumPy reductions return scalars (np.float32), not 0-d arrays; keep every .data an ndarray.
        result.data = np.asarray(array) if isinstance(array, np.generic) else array
        result.grad = None
        result.requires_grad = requires_grad
        result._ctx = None
        result._retains_grad = False
        return result

    # ----------------------------------------------------------------- basic facts
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return int(self.data.size)

    @property
    def dtype(self) -> Any:
        return self.data.dtype

    @property
    def device(self) -> str:
        return device_of(self.data)

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user (parameters, inputs) rather than by an op."""
        return self._ctx is None

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        device = f", device='{self.device}'" if self.device != "cpu" else ""
        return f"Tensor({to_host(self.data)!r}{grad}{device})"

    def item(self) -> float:
        """The single value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, this one has shape {self.shape}")
        return self.data.reshape(()).item()

    def numpy(self) -> np.ndarray:
        """The values as a NumPy array (copied from the GPU if needed)."""
        return to_host(self.data)

    # ----------------------------------------------------------------- graph handling
    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Compute d(self)/d(leaf) for every leaf that requires a gradient and add it to ``leaf.grad``.

        Args:
            grad: dL/d(self), same shape as self. May be omitted only when self has one element (a loss).
            retain_graph: keep the saved arrays so ``backward`` can run through this graph again.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward() on a tensor that does not require a gradient: no input had requires_grad=True, "
                "or it was computed under no_grad()"
            )
        xp = array_module(self.data)
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient works only on a single value (a loss); this tensor has shape "
                    f"{self.shape}. Pass grad=<array of that shape>, or reduce it first (e.g. .sum())."
                )
            grad = xp.ones_like(self.data)
        else:
            grad = grad.data if isinstance(grad, Tensor) else xp.asarray(grad, dtype=self.dtype)
            if grad.shape != self.data.shape:
                raise ValueError(f"backward(): grad has shape {grad.shape}, but the tensor has shape {self.shape}")
        run_backward(self, grad, retain_graph)

    def retain_grad(self) -> Tensor:
        """Keep this intermediate tensor's gradient in ``.grad`` after backward (leaves always keep theirs)."""
        self._retains_grad = True
        return self

    def detach(self) -> Tensor:
        """The same values, cut from the graph (no gradient flows through the result)."""
        return Tensor(self.data)

    def zero_grad(self) -> None:
        self.grad = None

    def requires_grad_(self, flag: bool = True) -> Tensor:
        if flag and self.data.dtype.kind != "f":
            raise TypeError(f"only floating tensors can require gradients, got dtype {self.data.dtype}")
        self.requires_grad = flag
        return self

    # ----------------------------------------------------------------- conversions
    def to(self, device: str) -> Tensor:
        """A copy on ``device`` ("cpu" or "cuda"); the tensor itself if it is already there."""
        device = check_device(device)
        if device == self.device:
            return self
        return Tensor(to_device(self.data, device), requires_grad=self.requires_grad)

    def astype(self, dtype: Any) -> Tensor:
        """A copy with another dtype, cut from the graph (for parameters and inputs, not inside a model)."""
        return Tensor(self.data.astype(dtype), requires_grad=self.requires_grad)

    # ----------------------------------------------------------------- operators (see minipretrain.ops)
    def __add__(self, other: Any) -> Tensor:
        return ops.add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return ops.add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return ops.sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return ops.sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return ops.mul(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return ops.mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return ops.div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return ops.div(other, self)

    def __neg__(self) -> Tensor:
        return ops.neg(self)

    def __pow__(self, exponent: float) -> Tensor:
        return ops.pow(self, exponent)

    def __matmul__(self, other: Any) -> Tensor:
        return ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return ops.matmul(other, self)

    def __getitem__(self, index: Any) -> Tensor:
        return ops.getitem(self, index)

    # ----------------------------------------------------------------- methods (thin wrappers over ops)
    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return ops.sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return ops.mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return ops.max(self, axis=axis, keepdims=keepdims)

    def var(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return ops.var(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape: Any) -> Tensor:
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return ops.reshape(self, tuple(shape))

    def transpose(self, axis1: int = -2, axis2: int = -1) -> Tensor:
        return ops.transpose(self, axis1, axis2)

    def permute(self, *axes: int) -> Tensor:
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        return ops.permute(self, tuple(axes))

    @property
    def T(self) -> Tensor:  # noqa: N802 - NumPy's name
        return ops.permute(self, tuple(reversed(range(self.ndim))))

    def exp(self) -> Tensor:
        return ops.exp(self)

    def log(self) -> Tensor:
        return ops.log(self)

    def sqrt(self) -> Tensor:
        return ops.sqrt(self)

    def tanh(self) -> Tensor:
        return ops.tanh(self)

    def relu(self) -> Tensor:
        return ops.relu(self)

    def softmax(self, axis: int = -1) -> Tensor:
        return ops.softmax(self, axis=axis)

    def log_softmax(self, axis: int = -1) -> Tensor:
        return ops.log_softmax(self, axis=axis)

    def masked_fill(self, mask: Any, value: float) -> Tensor:
        return ops.masked_fill(self, mask, value)


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None, device: str | None = None) -> Tensor:
    """Make a Tensor on ``device`` (default: ``MINIPRETRAIN_DEVICE`` or cpu)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device or default_device())


from .. import ops  # noqa: E402 - ops need Tensor defined first
