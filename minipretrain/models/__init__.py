"""The models: GPT (GPT-2 architecture) and BERT (with its MLM head), one file each; presets, the one builder
(``create_model``) and the cost accounting (parameters, FLOPs).

A new architecture is a file of its own plus one ``register_model`` line here.
"""
from .accounting import count_parameters, expected_parameters, training_flops_per_token
from .bert import BERT, BERTConfig
from .factory import MODEL_KINDS, ModelKind, create_bert_small, create_gpt_small, create_model, register_model
from .gpt import GPT, GPTConfig
from .presets import PRESETS, Preset, presets_for

register_model(ModelKind("gpt", GPT, GPTConfig))
register_model(ModelKind("bert", BERT, BERTConfig, block_size_field="max_position_embeddings"))

__all__ = [
    "BERT", "BERTConfig", "GPT", "GPTConfig", "MODEL_KINDS", "ModelKind", "PRESETS", "Preset", "count_parameters",
    "create_bert_small", "create_gpt_small", "create_model", "expected_parameters", "presets_for", "register_model",
    "training_flops_per_token",
]
