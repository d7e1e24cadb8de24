"""GPT-2 checkpoints: ``GPT2LMHeadModel`` / ``GPT2Model`` <-> :class:`~minipretrain.models.GPT`.

Names are ours already (``transformer.h.0.attn.c_attn.weight``, Conv1D layout (in, out)); a ``GPT2Model`` file
lacks the ``transformer.`` prefix, the causal-mask buffers (``attn.bias``) are skipped, and ``lm_head.weight``
must be the token embedding (tied).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..models.gpt import GPTConfig
from .huggingface import HFFormat, UnsupportedCheckpointError, check_settings, refuse

_SKIPPED_SUFFIXES = (".attn.bias", ".attn.masked_bias")


def config_from_hf(hf: dict[str, Any], dtype: str, tensors: dict[str, np.ndarray]) -> GPTConfig:
    n_embd = hf["n_embd"]
    check_settings("GPT-2", {
        "activation_function": ("gelu_new", hf.get("activation_function", "gelu_new")),
        "n_inner": (None, None if hf.get("n_inner") in (None, 4 * n_embd) else hf.get("n_inner")),
        "scale_attn_weights": (True, hf.get("scale_attn_weights", True)),
        "scale_attn_by_inverse_layer_idx": (False, hf.get("scale_attn_by_inverse_layer_idx", False)),
        "add_cross_attention": (False, hf.get("add_cross_attention", False)),
        "tie_word_embeddings": (True, hf.get("tie_word_embeddings", True)),
    })
    return GPTConfig(vocab_size=hf["vocab_size"], n_layer=hf["n_layer"], n_head=hf["n_head"], n_embd=n_embd,
                     block_size=hf["n_positions"], dropout=float(hf.get("resid_pdrop", 0.0)), bias=True,
                     layer_norm_eps=float(hf.get("layer_norm_epsilon", 1e-5)), dtype=dtype)


def names_from_hf(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, array in tensors.items():
        if name.endswith(_SKIPPED_SUFFIXES) or name == "lm_head.weight":
            continue  # causal-mask buffers; the LM head is the token embedding (checked below)
        out[name if name.startswith("transformer.") else "transformer." + name] = array
    head = tensors.get("lm_head.weight")
    if head is not None and "transformer.wte.weight" in out and not np.array_equal(head, out["transformer.wte.weight"]):
        refuse("GPT-2", "lm_head.weight", "different from wte.weight", "tied to wte.weight")
    return out


def config_to_hf(c: GPTConfig) -> dict[str, Any]:
    if not c.bias:
        raise UnsupportedCheckpointError("GPT-2 in transformers always has biases; a bias=False GPT cannot be saved")
    return {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": c.vocab_size,
        "n_layer": c.n_layer, "n_head": c.n_head, "n_embd": c.n_embd, "n_positions": c.block_size,
        "n_ctx": c.block_size, "n_inner": None, "activation_function": "gelu_new",
        "resid_pdrop": c.dropout, "embd_pdrop": c.dropout, "attn_pdrop": c.dropout,
        "layer_norm_epsilon": c.layer_norm_eps, "initializer_range": 0.02, "scale_attn_weights": True,
        "tie_word_embeddings": True, "use_cache": True,
    }


GPT2_FORMAT = HFFormat("gpt2", "gpt", config_from_hf, names_from_hf, config_to_hf)
