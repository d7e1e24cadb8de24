"""T5 checkpoints in Hugging Face's format (``T5ForConditionalGeneration``), both ways.

Our parameter names are Hugging Face's. The embedding appears up to four times in a file (``shared``,
``encoder.embed_tokens``, ``decoder.embed_tokens``, ``lm_head``): one Parameter here, so the copies are
checked equal and dropped. Untied heads (T5 v1.1 checkpoints) are refused: this T5 reads the shared table
scaled by d_model^-½, which an untied head does not do.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..models.t5 import FEED_FORWARD_PROJ, T5Config
from .huggingface import HFFormat, refuse

_COPIES_OF_SHARED = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight")


def config_from_hf(hf: dict[str, Any], dtype: str, tensors: dict[str, np.ndarray]) -> T5Config:
    """Our T5Config from a ``config.json`` dict; settings we do not compute are refused by name."""
    if hf.get("feed_forward_proj", "relu") not in FEED_FORWARD_PROJ:
        refuse("T5", "feed_forward_proj", hf.get("feed_forward_proj"), FEED_FORWARD_PROJ)
    if hf.get("tie_word_embeddings", True) is not True:
        refuse("T5", "tie_word_embeddings", hf.get("tie_word_embeddings"), True)
    return T5Config(vocab_size=hf["vocab_size"], d_model=hf["d_model"], num_layers=hf["num_layers"],
                    num_heads=hf["num_heads"], d_kv=hf["d_kv"], d_ff=hf["d_ff"],
                    num_decoder_layers=hf.get("num_decoder_layers") or hf["num_layers"],
                    relative_attention_num_buckets=hf.get("relative_attention_num_buckets", 32),
                    relative_attention_max_distance=hf.get("relative_attention_max_distance", 128),
                    dropout=float(hf.get("dropout_rate", 0.1)), layer_norm_eps=float(hf.get("layer_norm_epsilon", 1e-6)),
                    feed_forward_proj=hf.get("feed_forward_proj", "relu"), pad_token_id=hf.get("pad_token_id", 0),
                    eos_token_id=hf.get("eos_token_id", 1),
                    decoder_start_token_id=hf.get("decoder_start_token_id", hf.get("pad_token_id", 0)), dtype=dtype)


def names_from_hf(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Our state dict from the file's tensors: the copies of ``shared.weight`` checked equal and dropped."""
    state = {name: array for name, array in tensors.items() if name not in _COPIES_OF_SHARED}
    if "shared.weight" not in state and "encoder.embed_tokens.weight" in tensors:
        state["shared.weight"] = tensors["encoder.embed_tokens.weight"]
    for name in _COPIES_OF_SHARED:
        if name in tensors and not np.array_equal(tensors[name], state["shared.weight"]):
            refuse("T5", name, "different from shared.weight", "tied to shared.weight")
    return state


def config_to_hf(c: T5Config) -> dict[str, Any]:
    """The ``config.json`` that ``T5ForConditionalGeneration.from_pretrained`` reads back into the same model."""
    return {
        "architectures": ["T5ForConditionalGeneration"], "model_type": "t5", "vocab_size": c.vocab_size,
        "d_model": c.d_model, "d_kv": c.d_kv, "d_ff": c.d_ff, "num_layers": c.num_layers,
        "num_decoder_layers": c.num_decoder_layers, "num_heads": c.num_heads,
        "relative_attention_num_buckets": c.relative_attention_num_buckets,
        "relative_attention_max_distance": c.relative_attention_max_distance, "dropout_rate": c.dropout,
        "layer_norm_epsilon": c.layer_norm_eps, "initializer_factor": 1.0, "feed_forward_proj": c.feed_forward_proj,
        "is_encoder_decoder": True, "tie_word_embeddings": True, "use_cache": True, "pad_token_id": c.pad_token_id,
        "eos_token_id": c.eos_token_id, "decoder_start_token_id": c.decoder_start_token_id,
    }


T5_FORMAT = HFFormat("t5", "t5", config_from_hf, names_from_hf, config_to_hf)
