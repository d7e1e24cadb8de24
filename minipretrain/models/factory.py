"""``create_model``: the one way to build a model, from a preset name or a kind with explicit sizes.

A model kind is registered once (``register_model``, in ``models/__init__.py``) with its config class and the
config field that holds its longest sequence. Configs, presets, benchmarks and experiments all say
``block_size`` for that; :meth:`ModelKind.build` renames it for a kind that calls it otherwise (BERT's
``max_position_embeddings``), here and nowhere else.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from .presets import PRESETS


@dataclass(frozen=True)
class ModelKind:
    """How to build the models of one ``model.kind``."""

    name: str
    model_class: type
    config_class: type
    block_size_field: str = "block_size"  # the config field for the longest sequence

    def build(self, vocab_size: int, options: dict[str, Any]) -> Any:
        options = dict(options)
        if "block_size" in options and self.block_size_field != "block_size":
            options[self.block_size_field] = options.pop("block_size")
        known = {f.name for f in fields(self.config_class)} - {"vocab_size"}
        unknown = set(options) - known
        if unknown:
            raise ValueError(f"unknown {self.name} model options {sorted(unknown)} (block_size is always accepted); "
                             f"known: {sorted(known)}")
        return self.model_class(self.config_class(vocab_size=vocab_size, **options))


MODEL_KINDS: dict[str, ModelKind] = {}


def register_model(kind: ModelKind) -> ModelKind:
    """Make ``kind`` buildable by ``create_model`` (and so by configs, ``load_run`` and the experiments)."""
    MODEL_KINDS[kind.name] = kind
    return kind


def create_model(name: str, vocab_size: int, **options: Any) -> Any:
    """Build preset ``name`` (see ``PRESETS``) or a model of kind ``name`` ("gpt", "bert") for ``vocab_size``.

    ``options`` go to the config: sizes for a kind (``n_layer=4, n_head=4, n_embd=128, block_size=64``), or
    overrides of a preset (``dropout=0.1``, ``seed=3``, ``dtype="float64"``, ``block_size=256`` ...).
    """
    if name in PRESETS:
        preset = PRESETS[name]
        return MODEL_KINDS[preset.kind].build(vocab_size, {**preset.fields(), **options})
    if name in MODEL_KINDS:
        return MODEL_KINDS[name].build(vocab_size, options)
    raise KeyError(f"unknown model {name!r}: give a preset ({', '.join(PRESETS)}) or a kind ({', '.join(MODEL_KINDS)})")


def create_gpt_small(vocab_size: int = 50000, **overrides: Any) -> Any:
    """The original description's GPT: 6 layers, 8 heads, 512 wide, 512 positions (preset ``gpt-25m``)."""
    return create_model("gpt-25m", vocab_size, **overrides)


def create_bert_small(vocab_size: int = 30522, **overrides: Any) -> Any:
    """The BERT of the same shape: 6 layers, 8 heads, 512 wide, 512 positions (preset ``bert-25m``)."""
    return create_model("bert-25m", vocab_size, **overrides)
