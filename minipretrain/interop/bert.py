"""BERT checkpoints: ``BertForMaskedLM`` / ``BertForPreTraining`` / bare ``BertModel`` <-> :class:`~minipretrain.models.BERT`.

Names are ours already (``bert.encoder.layer.0.attention.self.query.weight``, Linear layout (out, in)); a
``BertModel`` file lacks the ``bert.`` prefix and has no ``cls.predictions.*`` weights (it loads as a BERT with
``mlm_head=False``), old files call LayerNorm parameters ``gamma``/``beta``, and what we do not have (the
pooler, the next-sentence head, ``position_ids`` buffers) is skipped.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..models.bert import BERTConfig
from .huggingface import HFFormat, check_settings

_SKIPPED_SUFFIXES = ("embeddings.position_ids",)
_SKIPPED_PREFIXES = ("bert.pooler.", "cls.seq_relationship.")
_HEAD_PREFIX = "cls.predictions."


def _our_name(name: str) -> str:
    name = name.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
    return name if name.startswith(("bert.", "cls.")) else "bert." + name  # "bert." is missing from BertModel files


def config_from_hf(hf: dict[str, Any], dtype: str, tensors: dict[str, np.ndarray]) -> BERTConfig:
    check_settings("BERT", {
        "hidden_act": ("gelu", hf.get("hidden_act", "gelu")),
        "position_embedding_type": ("absolute", hf.get("position_embedding_type", "absolute")),
        "is_decoder": (False, hf.get("is_decoder", False)),
        "add_cross_attention": (False, hf.get("add_cross_attention", False)),
        "tie_word_embeddings": (True, hf.get("tie_word_embeddings", True)),
    })
    has_head = any(_our_name(name).startswith(_HEAD_PREFIX) for name in tensors)
    return BERTConfig(vocab_size=hf["vocab_size"], n_layer=hf["num_hidden_layers"], n_head=hf["num_attention_heads"],
                      n_embd=hf["hidden_size"], max_position_embeddings=hf["max_position_embeddings"],
                      type_vocab_size=hf.get("type_vocab_size", 2), intermediate_size=hf["intermediate_size"],
                      dropout=float(hf.get("hidden_dropout_prob", 0.1)),
                      attention_dropout=float(hf.get("attention_probs_dropout_prob", 0.1)),
                      layer_norm_eps=float(hf.get("layer_norm_eps", 1e-12)), mlm_head=has_head, dtype=dtype)


def names_from_hf(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, array in tensors.items():
        name = _our_name(name)
        if name.endswith(_SKIPPED_SUFFIXES) or name.startswith(_SKIPPED_PREFIXES):
            continue
        if name == "cls.predictions.decoder.weight":
            continue  # tied to the word embedding
        if name == "cls.predictions.decoder.bias":
            name = "cls.predictions.bias"  # one Parameter under two names in Hugging Face
        out[name] = array
    return out


def config_to_hf(c: BERTConfig) -> dict[str, Any]:
    return {
        "architectures": ["BertForMaskedLM" if c.mlm_head else "BertModel"], "model_type": "bert",
        "vocab_size": c.vocab_size, "hidden_size": c.n_embd, "num_hidden_layers": c.n_layer,
        "num_attention_heads": c.n_head, "intermediate_size": c.intermediate_size, "hidden_act": "gelu",
        "hidden_dropout_prob": c.dropout, "attention_probs_dropout_prob": c.attention_dropout,
        "max_position_embeddings": c.max_position_embeddings, "type_vocab_size": c.type_vocab_size,
        "initializer_range": 0.02, "layer_norm_eps": c.layer_norm_eps, "position_embedding_type": "absolute",
        "tie_word_embeddings": True, "pad_token_id": 0,
    }


BERT_FORMAT = HFFormat("bert", "bert", config_from_hf, names_from_hf, config_to_hf)
