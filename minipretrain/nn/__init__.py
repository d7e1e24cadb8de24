"""Building blocks of the models: Module, Parameter, layers, attention, MLP and transformer blocks."""
from .layers import Conv1D, Dropout, Embedding, LayerNorm, Linear
from .module import Module, ModuleList, RandomSource, StateDictError
from .parameter import Parameter
from .transformer import (
    MLP, BertAttention, BertSelfAttention, CausalSelfAttention, KVCache, PostLNBlock, PreLNBlock,
)

__all__ = [
    "MLP", "BertAttention", "BertSelfAttention", "CausalSelfAttention", "Conv1D", "Dropout", "Embedding", "KVCache",
    "LayerNorm", "Linear", "Module", "ModuleList", "Parameter", "PostLNBlock", "PreLNBlock", "RandomSource",
    "StateDictError",
]
