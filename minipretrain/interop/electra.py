"""ELECTRA checkpoints in Hugging Face's format: ``ElectraForMaskedLM`` (generator) and ``ElectraForPreTraining``
(discriminator), both ways. Names are Hugging Face's; the generator's ``generator_lm_head.weight`` is the word
embedding (checked equal and dropped), ``position_ids`` buffers are skipped."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..models.electra import ElectraConfig, ElectraDiscriminator, ElectraGenerator
from .huggingface import HFFormat, UnsupportedCheckpointError, refuse

_SKIPPED = ("electra.embeddings.position_ids",)


def config_from_hf(hf: dict[str, Any], dtype: str, tensors: dict[str, np.ndarray]) -> ElectraConfig:
    checks = {"hidden_act": "gelu", "position_embedding_type": "absolute"}
    for setting, supported in checks.items():
        if hf.get(setting, supported) != supported:
            refuse("ELECTRA", setting, hf.get(setting), supported)
    if hf.get("tie_word_embeddings", True) is not True:
        refuse("ELECTRA", "tie_word_embeddings", hf.get("tie_word_embeddings"), True)
    return ElectraConfig(vocab_size=hf["vocab_size"], embedding_size=hf["embedding_size"],
                         hidden_size=hf["hidden_size"], num_hidden_layers=hf["num_hidden_layers"],
                         num_attention_heads=hf["num_attention_heads"], intermediate_size=hf["intermediate_size"],
                         max_position_embeddings=hf["max_position_embeddings"],
                         type_vocab_size=hf.get("type_vocab_size", 2), dropout=float(hf.get("hidden_dropout_prob", 0.1)),
                         attention_dropout=float(hf.get("attention_probs_dropout_prob", 0.1)),
                         layer_norm_eps=float(hf.get("layer_norm_eps", 1e-12)), dtype=dtype)


def _our_name(name: str) -> str:
    return name if name.startswith(("electra.", "generator_", "discriminator_")) else "electra." + name


def model_class_from_hf(tensors: dict[str, np.ndarray]) -> type:
    """The generator if the file has ``generator_*`` weights, the discriminator if ``discriminator_*``."""
    names = [_our_name(name) for name in tensors]
    if any(name.startswith("generator_") for name in names):
        return ElectraGenerator
    if any(name.startswith("discriminator_") for name in names):
        return ElectraDiscriminator
    refuse("ELECTRA", "head", "none (a bare ElectraModel)", "ElectraForMaskedLM or ElectraForPreTraining")
    raise AssertionError("unreachable")  # pragma: no cover - refuse raises


def names_from_hf(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Our state dict: ``electra.`` prefixed where a bare file lacks it, the tied LM-head copy checked and dropped."""
    state = {_our_name(name): array for name, array in tensors.items() if _our_name(name) not in _SKIPPED}
    head = state.pop("generator_lm_head.weight", None)
    if head is not None and not np.array_equal(head, state["electra.embeddings.word_embeddings.weight"]):
        refuse("ELECTRA", "generator_lm_head.weight", "different from the word embedding", "tied to it")
    return state


def model_to_hf(model: ElectraGenerator | ElectraDiscriminator) -> dict[str, Any]:
    """The ``config.json`` of a generator (ElectraForMaskedLM) or discriminator (ElectraForPreTraining); the
    pair is two Hugging Face models, so it is refused with what to save instead."""
    if model.kind == "electra":
        raise UnsupportedCheckpointError(
            "an ELECTRA pair is two Hugging Face models: save model.discriminator (ElectraForPreTraining, the one "
            "to keep) or model.generator (ElectraForMaskedLM), each to its own folder")
    c = model.config
    architecture = "ElectraForMaskedLM" if model.kind == "electra-generator" else "ElectraForPreTraining"
    return {
        "architectures": [architecture], "model_type": "electra", "vocab_size": c.vocab_size,
        "embedding_size": c.embedding_size, "hidden_size": c.hidden_size, "num_hidden_layers": c.num_hidden_layers,
        "num_attention_heads": c.num_attention_heads, "intermediate_size": c.intermediate_size, "hidden_act": "gelu",
        "hidden_dropout_prob": c.dropout, "attention_probs_dropout_prob": c.attention_dropout,
        "max_position_embeddings": c.max_position_embeddings, "type_vocab_size": c.type_vocab_size,
        "initializer_range": 0.02, "layer_norm_eps": c.layer_norm_eps, "position_embedding_type": "absolute",
        "summary_type": "first", "summary_use_proj": True, "summary_activation": "gelu",
        "summary_last_dropout": 0.1, "pad_token_id": 0, "tie_word_embeddings": True,
    }


ELECTRA_FORMAT = HFFormat("electra", "electra", config_from_hf, names_from_hf, model_class_from_hf=model_class_from_hf,
                          saves=("electra-generator", "electra-discriminator"), model_to_hf=model_to_hf)
