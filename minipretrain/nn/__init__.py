"""The generic building blocks of the models: Module, Parameter, Linear (and GPT-2's Conv1D), Embedding,
LayerNorm, Dropout, and the decoder's key/value cache. Architecture-specific blocks live with their model
(``models/gpt.py``, ``models/bert.py``)."""
from .kv_cache import KVCache, LayerCache
from .layers import Conv1D, Dropout, Embedding, LayerNorm, Linear, as_padding_mask
from .module import Module, ModuleList, RandomSource, StateDictError
from .parameter import Parameter

__all__ = [
    "Conv1D", "Dropout", "Embedding", "KVCache", "LayerCache", "LayerNorm", "Linear", "Module", "ModuleList",
    "Parameter", "RandomSource", "StateDictError", "as_padding_mask",
]
