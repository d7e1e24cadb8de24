"""``Parameter``: a Tensor that a Module owns and an optimizer updates."""
from __future__ import annotations

from typing import Any

from ..autograd.tensor import Tensor
from ..backend import default_device, device_of


def _raw(data: Any) -> Any:
    return data.data if isinstance(data, Tensor) else data


class Parameter(Tensor):
    """A learnable tensor (always requires a gradient).

    Attributes:
        decay: whether AdamW's decoupled weight decay applies. True for the weight matrices of Linear layers;
            the module that creates a bias, a LayerNorm gain/shift or an embedding table sets it False (as
            GPT-2/BERT practice: decay shrinks what multiplies activations, not offsets, scales or lookups).
    """

    def __init__(self, data: Any, decay: bool = True) -> None:
        # Host data (a layer's initial weights) goes to MINIPRETRAIN_DEVICE, so models are built there.
        super().__init__(data, requires_grad=True, device=None if device_of(_raw(data)) == "cuda" else default_device())
        self.decay = decay

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype}, device={self.device!r}, decay={self.decay})"
