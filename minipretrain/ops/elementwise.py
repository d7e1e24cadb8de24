"""Element-wise arithmetic and the simple nonlinearities. Binary ops broadcast as NumPy does.

Each Function is followed by its functional form. The convention of every op file: arrays that backward needs
go through ``ctx.save_for_backward``, shapes and options are ``ctx`` attributes, and a gradient is computed
only for an input whose ``ctx.needs_input_grad`` is True (``None`` otherwise). Binary ops take a Python
number on either side: ``Function.apply`` lifts it to the dtype of the Tensor beside it.
"""
from __future__ import annotations

from typing import Any

from ..autograd.function import Context, Function
from ..backend import array_module
from ._broadcast import unbroadcast


class Add(Function):
    """z = a + b.   dL/da = dL/dz,  dL/db = dL/dz  (each summed over the axes it was broadcast along)."""

    lifts_constants = True

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        ctx.a_shape, ctx.b_shape = a.shape, b.shape
        return a + b

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any, Any]:
        # >>> exercise: add-backward
        grad_a = unbroadcast(grad, ctx.a_shape) if ctx.needs_input_grad[0] else None
        grad_b = unbroadcast(grad, ctx.b_shape) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b
        # <<< exercise


def add(a: Any, b: Any) -> Any:
    """a + b (broadcasting; either may be a Python number)."""
    return Add.apply(a, b)


class Sub(Function):
    """z = a - b.   dL/da = dL/dz,  dL/db = -dL/dz."""

    lifts_constants = True

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        ctx.a_shape, ctx.b_shape = a.shape, b.shape
        return a - b

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any, Any]:
        # >>> exercise: add-backward
        grad_a = unbroadcast(grad, ctx.a_shape) if ctx.needs_input_grad[0] else None
        grad_b = unbroadcast(-grad, ctx.b_shape) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b
        # <<< exercise


def sub(a: Any, b: Any) -> Any:
    """a - b (broadcasting; either may be a Python number)."""
    return Sub.apply(a, b)


class Mul(Function):
    """z = a · b.   dL/da = b · dL/dz,  dL/db = a · dL/dz."""

    lifts_constants = True

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any, Any]:
        a, b = ctx.saved
        # >>> exercise: mul-backward
        grad_a = unbroadcast(grad * b, a.shape) if ctx.needs_input_grad[0] else None
        grad_b = unbroadcast(grad * a, b.shape) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b
        # <<< exercise


def mul(a: Any, b: Any) -> Any:
    """a · b (broadcasting; either may be a Python number)."""
    return Mul.apply(a, b)


class Div(Function):
    """z = a / b.   dL/da = dL/dz / b,  dL/db = -dL/dz · a / b² = -dL/dz · z / b."""

    lifts_constants = True

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        out = a / b
        ctx.save_for_backward(b, out)
        ctx.a_shape = a.shape
        return out

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any, Any]:
        b, out = ctx.saved
        grad_a = unbroadcast(grad / b, ctx.a_shape) if ctx.needs_input_grad[0] else None
        grad_b = unbroadcast(-grad * out / b, b.shape) if ctx.needs_input_grad[1] else None  # z / b = a / b²
        return grad_a, grad_b


def div(a: Any, b: Any) -> Any:
    """a / b (broadcasting; either may be a Python number)."""
    return Div.apply(a, b)


class Neg(Function):
    """z = -x.   dL/dx = -dL/dz."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        return -x

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any]:
        return (-grad,)


def neg(x: Any) -> Any:
    """-x."""
    return Neg.apply(x)


class Pow(Function):
    """z = x^p for a constant exponent p.   dL/dx = p · x^(p-1) · dL/dz."""

    @staticmethod
    def forward(ctx: Context, x: Any, exponent: float) -> Any:
        ctx.save_for_backward(x)
        ctx.exponent = exponent
        return x**exponent

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any, None]:
        (x,) = ctx.saved
        p = ctx.exponent
        return grad * p * x ** (p - 1), None


def pow(x: Any, exponent: float) -> Any:  # noqa: A001 - mirrors the operator's name
    """x ** exponent, for a constant (Python number) exponent."""
    if not isinstance(exponent, (int, float)):
        raise TypeError(f"pow takes a constant Python number as exponent, got {type(exponent).__name__}")
    return Pow.apply(x, exponent)


class Exp(Function):
    """z = eˣ.   dL/dx = z · dL/dz  (the forward's output is saved: eˣ is its own derivative)."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        out = array_module(x).exp(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any]:
        (out,) = ctx.saved
        return (grad * out,)


def exp(x: Any) -> Any:
    """eˣ."""
    return Exp.apply(x)


class Log(Function):
    """z = ln x (x > 0).   dL/dx = dL/dz / x."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        ctx.save_for_backward(x)
        return array_module(x).log(x)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any]:
        (x,) = ctx.saved
        return (grad / x,)


def log(x: Any) -> Any:
    """Natural logarithm."""
    return Log.apply(x)


class Sqrt(Function):
    """z = √x (x > 0).   dL/dx = dL/dz / (2z)  (d√x/dx = 1 / (2√x), and √x is the saved output)."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        root = array_module(x).sqrt(x)
        ctx.save_for_backward(root)
        return root

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any]:
        (root,) = ctx.saved
        return (grad / (2 * root),)


def sqrt(x: Any) -> Any:
    """Square root."""
    return Sqrt.apply(x)


class Tanh(Function):
    """z = tanh x.   dL/dx = (1 - z²) · dL/dz."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        out = array_module(x).tanh(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any]:
        (out,) = ctx.saved
        return (grad * (1 - out * out),)


def tanh(x: Any) -> Any:
    """Hyperbolic tangent."""
    return Tanh.apply(x)


class Relu(Function):
    """z = max(x, 0).   dL/dx = dL/dz where x > 0, else 0 (the subgradient 0 is taken at x = 0)."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        positive = x > 0
        ctx.save_for_backward(positive)
        return x * positive

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any]:
        (positive,) = ctx.saved
        return (grad * positive,)


def relu(x: Any) -> Any:
    """max(x, 0)."""
    return Relu.apply(x)
