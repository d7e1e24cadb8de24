"""Named model sizes, ``create_model``, and parameter counts for scaling-law plots.

CPU sizes train in minutes here; the others are the original description's GPU sizes. The nominal size in a
name is roughly the *non-embedding* parameter count (what Kaplan et al. scale), except ``*-25m``, the
original description's 6-layer, 512-wide model, which has 18.9M non-embedding parameters and about 25M in all
with a ~10k vocabulary. ``python -m minipretrain models`` prints the real counts for a given vocabulary.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from ..nn import Module
from .bert import BERT, BERTConfig
from .gpt import GPT, GPTConfig

Model = Union[GPT, BERT]


@dataclass(frozen=True)
class Preset:
    """The shape of a named model; the vocabulary size comes from the tokenizer at creation time."""

    kind: str  # "gpt" or "bert"
    n_layer: int
    n_head: int
    n_embd: int
    block_size: int
    description: str


_SHAPES = {
    # name: (n_layer, n_head, n_embd, block_size, description)
    "0.1m": (2, 2, 64, 64, "CPU: a toy for tests and lessons"),
    "0.8m": (4, 4, 128, 64, "CPU: nanoGPT's 'baby GPT' (shakespeare-char on a laptop)"),
    "3m": (4, 4, 256, 128, "CPU: the largest that trains in minutes here"),
    "25m": (6, 8, 512, 512, "GPU: the original description's small model"),
    "50m": (8, 8, 768, 512, "GPU"),
    "100m": (12, 12, 768, 1024, "GPU: GPT-2 small / BERT-base shape"),
    "200m": (16, 16, 1024, 1024, "GPU"),
}

PRESETS: dict[str, Preset] = {
    f"{kind}-{size}": Preset(kind, layers, heads, width, block, description)
    for kind in ("gpt", "bert")
    for size, (layers, heads, width, block, description) in _SHAPES.items()
}


def create_model(name: str, vocab_size: int, **overrides: Any) -> Model:
    """Build the preset ``name`` (see ``PRESETS``) for a vocabulary of ``vocab_size``.

    ``overrides`` go to the config (``dropout=0.1``, ``seed=3``, ``dtype="float64"``, ``block_size=256`` ...).
    """
    if name not in PRESETS:
        raise KeyError(f"unknown model preset {name!r}; choose one of {', '.join(PRESETS)}")
    preset = PRESETS[name]
    if preset.kind == "gpt":
        fields: dict[str, Any] = dict(vocab_size=vocab_size, n_layer=preset.n_layer, n_head=preset.n_head,
                                      n_embd=preset.n_embd, block_size=preset.block_size)
        fields.update(overrides)
        return GPT(GPTConfig(**fields))
    fields = dict(vocab_size=vocab_size, n_layer=preset.n_layer, n_head=preset.n_head, n_embd=preset.n_embd,
                  max_position_embeddings=preset.block_size)
    if "block_size" in overrides:
        fields["max_position_embeddings"] = overrides.pop("block_size")
    fields.update(overrides)
    return BERT(BERTConfig(**fields))


def create_gpt_small(vocab_size: int = 50000, **overrides: Any) -> GPT:
    """The original description's GPT: 6 layers, 8 heads, 512 wide, 512 positions (preset ``gpt-25m``)."""
    return create_model("gpt-25m", vocab_size, **overrides)


def create_bert_small(vocab_size: int = 30522, **overrides: Any) -> BERT:
    """The BERT of the same shape: 6 layers, 8 heads, 512 wide, 512 positions (preset ``bert-25m``)."""
    return create_model("bert-25m", vocab_size, **overrides)


def count_parameters(model: Module, non_embedding: bool = True) -> int:
    """Learnable scalars of ``model`` (tied weights once); ``non_embedding`` leaves out the token, position
    (and BERT's token-type) tables, as Kaplan et al. (2020) do for scaling laws."""
    total = model.num_parameters()
    if non_embedding and hasattr(model, "embedding_parameters"):
        total -= sum(p.size for p in model.embedding_parameters())
    return total


def expected_parameters(kind: str, vocab_size: int, n_layer: int, n_embd: int, block_size: int,
                        type_vocab_size: int = 2) -> dict[str, int]:
    """Closed-form parameter counts (with biases), to check the models against and to print without building.

    Per block: attention 4C² + 4C, MLP 8C² + 5C, two LayerNorms 4C  ->  12C² + 13C.
    GPT adds the tables (V + P)·C and ln_f 2C. BERT adds (V + P + S)·C, the embedding LayerNorm 2C, and the
    MLM head C² + C (dense) + 2C (LayerNorm) + V (decoder bias).
    """
    c = n_embd
    blocks = n_layer * (12 * c * c + 13 * c)
    if kind == "gpt":
        embeddings = (vocab_size + block_size) * c
        non_embedding = blocks + 2 * c
    else:
        embeddings = (vocab_size + block_size + type_vocab_size) * c
        non_embedding = blocks + 2 * c + c * c + 3 * c + vocab_size
    return {"total": embeddings + non_embedding, "non_embedding": non_embedding}
