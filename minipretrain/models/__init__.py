"""The models: GPT (GPT-2 architecture) and BERT (with its MLM head), size presets and parameter counts."""
from .bert import BERT, BERTConfig
from .gpt import GPT, GPTConfig
from .presets import (
    PRESETS, Preset, count_parameters, create_bert_small, create_gpt_small, create_model, expected_parameters,
)

__all__ = [
    "BERT", "BERTConfig", "GPT", "GPTConfig", "PRESETS", "Preset", "count_parameters", "create_bert_small",
    "create_gpt_small", "create_model", "expected_parameters",
]
