"""Every differentiable op of minipretrain: a ``Function`` with a hand-derived backward, and a functional form.

One file per op family, each telling the whole story: the Function (forward and backward side by side, the
math in its docstring, each backward step naming the forward line it undoes), its functional wrapper right
after it, and, for a fused op, its composed reference (``*_reference``: the same computation from primitive
ops, so autograd derives the gradient independently). Tests: ``tests/test_ops_<family>.py``.
"""
from .activations import gelu
from .attention import scaled_dot_product_attention
from .biased_attention import biased_attention
from .binary_cross_entropy import binary_cross_entropy_with_logits
from .cross_entropy import IGNORE_INDEX, cross_entropy
from .dropout import dropout
from .elementwise import add, div, exp, log, mul, neg, pow, relu, sqrt, sub, tanh
from .embedding import embedding
from .layer_norm import layer_norm
from .linalg import matmul
from .reduce import max, mean, sum, var
from .rms_norm import rms_norm
from .select import masked_fill, where
from .shape import concat, getitem, permute, reshape, split, transpose
from .softmax import log_softmax, softmax

__all__ = [
    "IGNORE_INDEX", "add", "biased_attention", "binary_cross_entropy_with_logits", "concat", "cross_entropy", "div",
    "dropout", "embedding", "exp", "gelu", "getitem", "layer_norm", "log", "log_softmax", "masked_fill", "matmul",
    "max", "mean", "mul", "neg", "permute", "pow", "relu", "reshape", "rms_norm", "scaled_dot_product_attention",
    "softmax", "split", "sqrt", "sub", "sum", "tanh", "transpose", "var", "where",
]
