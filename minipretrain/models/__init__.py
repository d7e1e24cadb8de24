"""The models: GPT (GPT-2 architecture), BERT (with its MLM head), T5 (encoder-decoder) and ELECTRA (generator +
discriminator), one file each; presets, the one builder (``create_model``) and the cost accounting (parameters,
FLOPs).

A new architecture is a file of its own plus one ``register_model`` line here.
"""
from .accounting import count_parameters, expected_flops_per_token, expected_parameters, training_flops_per_token
from .bert import BERT, BERTConfig
from .electra import (
    ELECTRA, ELECTRAConfig, ElectraConfig, ElectraDiscriminator, ElectraGenerator, electra_config_from_sizes,
)
from .factory import MODEL_KINDS, ModelKind, create_bert_small, create_gpt_small, create_model, register_model
from .gpt import GPT, GPTConfig
from .presets import PRESETS, Preset, presets_for
from .t5 import T5, T5Config

register_model(ModelKind("gpt", GPT, GPTConfig))
register_model(ModelKind("bert", BERT, BERTConfig, block_size_field="max_position_embeddings"))
register_model(ModelKind("t5", T5, T5Config, block_size_field="max_length",
                         renames={"n_layer": "num_layers", "n_head": "num_heads", "n_embd": "d_model"}))
register_model(ModelKind("electra", ELECTRA, ELECTRAConfig, config_from_sizes=electra_config_from_sizes))
PRESETS.update({**presets_for("t5"), **presets_for("electra")})

__all__ = [
    "BERT", "BERTConfig", "ELECTRA", "ELECTRAConfig", "ElectraConfig", "ElectraDiscriminator", "ElectraGenerator",
    "GPT", "GPTConfig", "MODEL_KINDS", "ModelKind", "PRESETS", "Preset", "T5", "T5Config", "count_parameters",
    "create_bert_small", "create_gpt_small", "create_model", "electra_config_from_sizes", "expected_flops_per_token",
    "expected_parameters", "presets_for", "register_model", "training_flops_per_token",
]
