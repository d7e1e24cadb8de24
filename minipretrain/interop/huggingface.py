"""Read and write Hugging Face checkpoints (``config.json`` + ``model.safetensors``) for GPT-2 and BERT.

Our parameter names and layouts *are* Hugging Face's (``transformer.h.0.attn.c_attn.weight`` in GPT-2's Conv1D
layout (in, out); ``bert.encoder.layer.0.attention.self.query.weight`` in Linear layout (out, in)), so moving a
checkpoint is renaming at the edges only: GPT-2 checkpoints saved from ``GPT2Model`` lack the ``transformer.``
prefix, old BERT ones call LayerNorm parameters ``gamma``/``beta``, and buffers (causal-mask ``attn.bias``,
``position_ids``) and heads we do not have (BERT's pooler and next-sentence head) are skipped.

A configuration that would compute something else (another activation, relative positions, untied output
weights, ...) is refused by name rather than loaded into a model that would silently disagree.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..backend import to_host
from ..models.bert import BERT, BERTConfig
from ..models.gpt import GPT, GPTConfig

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class UnsupportedCheckpointError(ValueError):
    """The checkpoint's configuration describes a model minipretrain does not implement."""


def _refuse(model_type: str, setting: str, value: Any, supported: Any) -> None:
    raise UnsupportedCheckpointError(
        f"{model_type} checkpoint has {setting}={value!r}; minipretrain implements only {setting}={supported!r}, "
        "so loading it would give different outputs"
    )


def _gpt_config(hf: dict[str, Any], dtype: str) -> GPTConfig:
    n_embd = hf["n_embd"]
    checks = {
        "activation_function": ("gelu_new", hf.get("activation_function", "gelu_new")),
        "n_inner": (None, None if hf.get("n_inner") in (None, 4 * n_embd) else hf.get("n_inner")),
        "scale_attn_weights": (True, hf.get("scale_attn_weights", True)),
        "scale_attn_by_inverse_layer_idx": (False, hf.get("scale_attn_by_inverse_layer_idx", False)),
        "add_cross_attention": (False, hf.get("add_cross_attention", False)),
        "tie_word_embeddings": (True, hf.get("tie_word_embeddings", True)),
    }
    for setting, (supported, value) in checks.items():
        if value != supported:
            _refuse("GPT-2", setting, value, supported)
    return GPTConfig(vocab_size=hf["vocab_size"], n_layer=hf["n_layer"], n_head=hf["n_head"], n_embd=n_embd,
                     block_size=hf["n_positions"], dropout=float(hf.get("resid_pdrop", 0.0)), bias=True,
                     layer_norm_eps=float(hf.get("layer_norm_epsilon", 1e-5)), dtype=dtype)


def _bert_config(hf: dict[str, Any], dtype: str) -> BERTConfig:
    checks = {
        "hidden_act": ("gelu", hf.get("hidden_act", "gelu")),
        "position_embedding_type": ("absolute", hf.get("position_embedding_type", "absolute")),
        "is_decoder": (False, hf.get("is_decoder", False)),
        "add_cross_attention": (False, hf.get("add_cross_attention", False)),
        "tie_word_embeddings": (True, hf.get("tie_word_embeddings", True)),
    }
    for setting, (supported, value) in checks.items():
        if value != supported:
            _refuse("BERT", setting, value, supported)
    return BERTConfig(vocab_size=hf["vocab_size"], n_layer=hf["num_hidden_layers"], n_head=hf["num_attention_heads"],
                      n_embd=hf["hidden_size"], max_position_embeddings=hf["max_position_embeddings"],
                      type_vocab_size=hf.get("type_vocab_size", 2), intermediate_size=hf["intermediate_size"],
                      dropout=float(hf.get("hidden_dropout_prob", 0.1)),
                      attention_dropout=float(hf.get("attention_probs_dropout_prob", 0.1)),
                      layer_norm_eps=float(hf.get("layer_norm_eps", 1e-12)), dtype=dtype)


_SKIPPED_SUFFIXES = (".attn.bias", ".attn.masked_bias", "embeddings.position_ids")
_SKIPPED_PREFIXES = ("bert.pooler.", "cls.seq_relationship.")


def _gpt_names(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, array in tensors.items():
        if name.endswith(_SKIPPED_SUFFIXES) or name == "lm_head.weight":
            continue  # causal-mask buffers; the LM head is the token embedding (checked below)
        out[name if name.startswith("transformer.") else "transformer." + name] = array
    head = tensors.get("lm_head.weight")
    if head is not None and "transformer.wte.weight" in out and not np.array_equal(head, out["transformer.wte.weight"]):
        _refuse("GPT-2", "lm_head.weight", "different from wte.weight", "tied to wte.weight")
    return out


def _bert_names(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, array in tensors.items():
        name = name.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        if not name.startswith(("bert.", "cls.")):
            name = "bert." + name  # saved from BertModel
        if name.endswith(_SKIPPED_SUFFIXES) or name.startswith(_SKIPPED_PREFIXES):
            continue
        if name == "cls.predictions.decoder.weight":
            continue  # tied to the word embedding
        if name == "cls.predictions.decoder.bias":
            name = "cls.predictions.bias"  # one Parameter under two names in Hugging Face
        out[name] = array
    return out


def load_hf_checkpoint(directory: str | os.PathLike[str], dtype: str | None = None,
                       device: str = "cpu") -> GPT | BERT:
    """A GPT or BERT built from a Hugging Face folder (``config.json`` + ``model.safetensors``).

    Args:
        directory: what ``save_pretrained`` wrote (GPT2LMHeadModel/GPT2Model, BertForMaskedLM/BertForPreTraining).
        dtype: "float32" or "float64"; default: the dtype stored in the file.
        device: where the parameters go.

    Raises:
        UnsupportedCheckpointError: the configuration describes a model we do not implement.
        StateDictError: the weights miss entries or have the wrong shapes (e.g. a BertModel without MLM head).
    """
    from safetensors.numpy import load_file

    directory = Path(directory)
    hf = json.loads((directory / CONFIG_FILE).read_text())
    tensors = load_file(str(directory / WEIGHTS_FILE))
    if dtype is None:
        floats = [a.dtype for a in tensors.values() if a.dtype.kind == "f"]
        dtype = str(floats[0]) if floats else "float32"
    model_type = hf.get("model_type")
    model: GPT | BERT
    if model_type == "gpt2":
        model, state = GPT(_gpt_config(hf, dtype)), _gpt_names(tensors)
    elif model_type == "bert":
        model, state = BERT(_bert_config(hf, dtype)), _bert_names(tensors)
    else:
        raise UnsupportedCheckpointError(f"model_type={model_type!r} is not supported; minipretrain reads 'gpt2' and 'bert'")
    model.load_state_dict(state)
    return model.to(device)


def save_hf_checkpoint(model: GPT | BERT, directory: str | os.PathLike[str]) -> Path:
    """Write ``model`` as a Hugging Face folder that ``GPT2LMHeadModel`` / ``BertForMaskedLM.from_pretrained`` opens.

    Weights go to ``model.safetensors`` (tied weights once, as ``save_pretrained`` does), in the model's dtype.
    """
    from safetensors.numpy import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    c = model.config
    if model.kind == "gpt":
        if not c.bias:
            raise UnsupportedCheckpointError("GPT-2 in transformers always has biases; a bias=False GPT cannot be saved")
        hf = {
            "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": c.vocab_size,
            "n_layer": c.n_layer, "n_head": c.n_head, "n_embd": c.n_embd, "n_positions": c.block_size,
            "n_ctx": c.block_size, "n_inner": None, "activation_function": "gelu_new",
            "resid_pdrop": c.dropout, "embd_pdrop": c.dropout, "attn_pdrop": c.dropout,
            "layer_norm_epsilon": c.layer_norm_eps, "initializer_range": 0.02, "scale_attn_weights": True,
            "tie_word_embeddings": True, "use_cache": True,
        }
    else:
        hf = {
            "architectures": ["BertForMaskedLM"], "model_type": "bert", "vocab_size": c.vocab_size,
            "hidden_size": c.n_embd, "num_hidden_layers": c.n_layer, "num_attention_heads": c.n_head,
            "intermediate_size": c.intermediate_size, "hidden_act": "gelu",
            "hidden_dropout_prob": c.dropout, "attention_probs_dropout_prob": c.attention_dropout,
            "max_position_embeddings": c.max_position_embeddings, "type_vocab_size": c.type_vocab_size,
            "initializer_range": 0.02, "layer_norm_eps": c.layer_norm_eps, "position_embedding_type": "absolute",
            "tie_word_embeddings": True, "pad_token_id": 0,
        }
    dtype = c.dtype
    hf["torch_dtype"] = dtype
    hf["dtype"] = dtype
    (directory / CONFIG_FILE).write_text(json.dumps(hf, indent=2) + "\n")
    tensors = {name: np.ascontiguousarray(to_host(array)) for name, array in model.state_dict().items()}
    save_file(tensors, str(directory / WEIGHTS_FILE), metadata={"format": "pt"})
    return directory
