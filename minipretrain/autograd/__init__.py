"""The autograd engine: Tensor, Function, backward, no_grad and gradcheck."""
from .function import Context, Function, GraphFreedError
from .grad_mode import is_grad_enabled, no_grad
from .tensor import Tensor, tensor
from .gradcheck import GradcheckError, GradcheckReport, gradcheck

__all__ = [
    "Context", "Function", "GradcheckError", "GradcheckReport", "GraphFreedError", "Tensor", "gradcheck",
    "is_grad_enabled", "no_grad", "tensor",
]
