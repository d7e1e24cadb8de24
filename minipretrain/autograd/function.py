"""``Function``: one differentiable operation, its forward and backward side by side.

A Function works on raw arrays (NumPy or CuPy), never on Tensors, so each ``forward``/``backward`` pair reads
like the math in its docstring. ``Function.apply`` does the bookkeeping: it unwraps Tensors, checks devices,
calls ``forward``, and, when a gradient is needed, records a ``Context`` that ``backward`` will receive.

Writing a new op::

    class Square(Function):
        '''y = x²;  dL/dx = 2x · dL/dy'''

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved
            return (2 * x * grad,)

``backward`` returns one gradient per positional input of ``forward`` (``None`` for inputs that have no
gradient, such as integer targets, and for inputs whose ``ctx.needs_input_grad`` is False). Keyword arguments
are configuration, never differentiated. State for backward goes through ``ctx.save_for_backward`` (arrays)
and plain ``ctx`` attributes (shapes, options).

Ops never touch ``Tensor`` themselves: ``apply`` unwraps Tensors, lifts Python numbers and arrays beside a
Tensor to constants of its dtype (for Functions with ``lifts_constants``), and :func:`constant` gives an op
the array behind an argument that is data, not a differentiable input (ids, masks, indices).

Floating-point Tensors of different dtypes (float32 and float64) in one op are refused, never promoted:
NumPy would compute in float64 without a word, and a float32 leaf would receive a float64 ``.grad``. Convert
one of them explicitly (``x.astype("float64")``, or a model built with ``dtype="float64"``).
"""
from __future__ import annotations

from typing import Any, ClassVar

from ..backend import DeviceError, array_module, device_of
from .grad_mode import is_grad_enabled
from .tensor import Tensor


class GraphFreedError(RuntimeError):
    """Backward was called through a graph whose saved arrays were already released."""


class Context:
    """What a Function's forward leaves for its backward: saved arrays, attributes, and the graph edges."""

    __slots__ = ("function", "inputs", "needs_input_grad", "_saved", "_freed", "__dict__")

    def __init__(self, function: type[Function], inputs: tuple[Any, ...]) -> None:
        self.function = function
        self.inputs = inputs
        self.needs_input_grad = tuple(isinstance(x, Tensor) and x.requires_grad for x in inputs)
        self._saved: tuple[Any, ...] = ()
        self._freed = False

    def save_for_backward(self, *arrays: Any) -> None:
        """Keep ``arrays`` for backward; they are released after backward (unless ``retain_graph``)."""
        self._saved = arrays

    @property
    def saved(self) -> tuple[Any, ...]:
        """The arrays given to ``save_for_backward``."""
        if self._freed:
            raise GraphFreedError(
                f"backward through the graph of {self.function.__name__} a second time: its saved arrays were "
                "released after the first backward. Pass retain_graph=True to the first backward() if you need "
                "to walk the graph twice."
            )
        return self._saved

    def release(self) -> None:
        """Drop saved arrays, attributes and edges so their memory can be reused."""
        self._saved = ()
        self.inputs = ()
        self.__dict__.clear()
        self._freed = True

    @property
    def freed(self) -> bool:
        return self._freed


class Function:
    """Base class of every differentiable op. Subclasses define ``forward`` and ``backward`` (static)."""

    #: Binary arithmetic sets this: a Python number or array among the inputs becomes a constant of the dtype
    #: and device of the Tensor beside it (so ``x * 2`` stays float32 and ``2 - x`` works).
    lifts_constants: ClassVar[bool] = False

    @staticmethod
    def forward(ctx: Context, *arrays: Any, **options: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Any, **options: Any) -> Any:
        """Run the op on Tensors (or constants) and return a Tensor that remembers how it was made."""
        if cls.lifts_constants and not all(isinstance(x, Tensor) for x in inputs):
            inputs = _lift_constants(cls.__name__, inputs)
        arrays = [x.data if isinstance(x, Tensor) else x for x in inputs]
        _check_operands(cls.__name__, inputs)
        needs_graph = is_grad_enabled() and any(isinstance(x, Tensor) and x.requires_grad for x in inputs)
        ctx = Context(cls, inputs)
        try:
            out = cls.forward(ctx, *arrays, **options)
        except ValueError as error:
            shapes = ", ".join(str(getattr(a, "shape", type(a).__name__)) for a in arrays)
            raise ValueError(f"{cls.__name__}: {error} (input shapes: {shapes})") from error
        if not needs_graph:
            return Tensor._from_array(out)
        result = Tensor._from_array(out, requires_grad=True)
        result._ctx = ctx
        return result


def constant(x: Any, like: Any = None) -> Any:
    """The array behind ``x`` when it is a Tensor; otherwise ``x`` itself, as an array of ``like``'s module
    (NumPy or CuPy) when ``like`` (a Tensor) is given. For op arguments that are data, not inputs to
    differentiate: token ids, targets, masks, indices."""
    if isinstance(x, Tensor):
        return x.data
    return x if like is None else array_module(like.data).asarray(x)


def _lift_constants(op: str, inputs: tuple[Any, ...]) -> tuple[Any, ...]:
    partner = next((x for x in inputs if isinstance(x, Tensor)), None)
    if partner is None:
        kinds = " and ".join(type(x).__name__ for x in inputs)
        raise TypeError(f"{op}: at least one operand must be a Tensor, got {kinds}")
    xp = array_module(partner.data)
    dtype = partner.data.dtype if partner.data.dtype.kind == "f" else None
    # A boolean array stays what it is: a condition (``where``), not a number to compute with.
    return tuple(x if isinstance(x, Tensor) or getattr(x, "dtype", None) == bool
                 else Tensor(xp.asarray(x, dtype=dtype)) for x in inputs)


def _check_operands(op: str, inputs: tuple[Any, ...]) -> None:
    """Refuse Tensors on different devices or of different float dtypes in one op. This runs for every op,
    so the common case is a cheap pass (array types and dtype objects compared); the two checks below, which
    explain the problem, run only when something differs."""
    arrays = [x.data for x in inputs if isinstance(x, Tensor)]
    if len(arrays) < 2:
        return
    first_type = type(arrays[0])
    if any(type(a) is not first_type for a in arrays):
        _check_same_device(op, inputs)
    float_dtypes = [a.dtype for a in arrays if a.dtype.kind == "f"]
    if any(dtype != float_dtypes[0] for dtype in float_dtypes):
        _check_same_float_dtype(op, inputs)


def _check_same_device(op: str, inputs: tuple[Any, ...]) -> None:
    devices = {device_of(x.data) for x in inputs if isinstance(x, Tensor)}
    if len(devices) > 1:
        described = ", ".join(f"{tuple(x.shape)} on {x.device}" for x in inputs if isinstance(x, Tensor))
        raise DeviceError(f"{op}: inputs live on different devices ({described}); move them with .to(device) first")


def _check_same_float_dtype(op: str, inputs: tuple[Any, ...]) -> None:
    floats = {str(x.data.dtype) for x in inputs if isinstance(x, Tensor) and x.data.dtype.kind == "f"}
    if len(floats) > 1:
        described = ", ".join(f"{tuple(x.shape)} {x.data.dtype}" for x in inputs if isinstance(x, Tensor))
        raise TypeError(f"{op}: {' and '.join(sorted(floats, key=lambda name: int(name[5:])))} tensors in one op ({described}); they "
                        "are not promoted silently: convert one with .astype(...) so both have the same dtype")
