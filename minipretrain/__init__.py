"""minipretrain: how language models learn from unlabeled text, from the autograd engine up.

    >>> import minipretrain as mp
    >>> x = mp.tensor([[1.0, 2.0]], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    array([[2., 4.]], dtype=float32)
"""
from . import ops
from .autograd import Function, GradcheckError, Tensor, gradcheck, is_grad_enabled, no_grad, tensor
from .backend import DeviceError, tune_allocator

__version__ = "0.1.0"

tune_allocator()
__all__ = [
    "DeviceError", "Function", "GradcheckError", "Tensor", "gradcheck", "is_grad_enabled", "no_grad", "ops",
    "tensor", "__version__",
]
