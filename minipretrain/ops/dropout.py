"""Inverted dropout: zero each element with probability p, scale the survivors by 1/(1-p)."""
from __future__ import annotations

from typing import Any

from ..autograd.function import Context, Function
from ..backend import array_module


def keep_mask(shape: tuple[int, ...], p: float, rng: Any, dtype: Any) -> Any:
    """A mask with entries 1/(1-p) (kept) or 0 (dropped), drawn from ``rng`` (a NumPy or CuPy Generator)."""
    keep = rng.random(shape, dtype=dtype) >= p
    return keep.astype(dtype) * dtype.type(1.0 / (1.0 - p))


class Dropout(Function):
    """y = x ⊙ m,  m = 1/(1-p) with probability 1-p, else 0.   dL/dx = dL/dy ⊙ m.

    Scaling at training time (inverted dropout) keeps E[y] = x, so evaluation needs no rescaling.
    """

    @staticmethod
    def forward(ctx: Context, x: Any, p: float = 0.5, rng: Any = None) -> Any:
        mask = keep_mask(x.shape, p, rng, x.dtype)
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple[Any]:
        (mask,) = ctx.saved
        return (grad * mask,)


def dropout(x: Any, p: float, rng: Any, training: bool = True) -> Any:
    """Inverted dropout with drop probability ``p`` and the seeded generator ``rng``; identity when not training."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout: p must be in [0, 1), got {p}")
    if not training or p == 0.0:
        return x
    if rng is None:
        xp = array_module(getattr(x, "data", x)).__name__  # a NumPy generator's mask cannot multiply a CuPy array
        raise ValueError(f"dropout: pass a seeded generator of the input's array module (rng={xp}.random."
                         "default_rng(seed)) so runs repeat exactly")
    return Dropout.apply(x, p=p, rng=rng)

