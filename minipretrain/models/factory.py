"""``create_model``: the one way to build a model, from a preset name or a kind with explicit sizes.

A model kind is registered once (``register_model``, in ``models/__init__.py``) with its config class and the
config field that holds its longest sequence. Configs, presets, benchmarks and experiments all say
``block_size`` for that; :meth:`ModelKind.build` renames it for a kind that calls it otherwise (BERT's
``max_position_embeddings``), here and nowhere else. A kind whose config names the shared sizes otherwise
(T5's ``d_model``/``num_layers``/``num_heads``) lists its ``renames``; a kind whose config is not one flat
dataclass (ELECTRA's generator + discriminator pair) gives ``config_from_sizes``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from .presets import PRESETS


@dataclass(frozen=True)
class ModelKind:
    """How to build the models of one ``model.kind``."""

    name: str
    model_class: type
    config_class: type
    block_size_field: str = "block_size"  # the config field for the longest sequence
    #: shared size name -> this config's field (T5: {"n_embd": "d_model", ...}), applied like block_size's
    renames: dict[str, str] = field(default_factory=dict)
    #: (vocab_size, options in the shared names) -> config, for a config that is not one flat dataclass;
    #: it refuses unknown options itself (ValueError)
    config_from_sizes: Callable[[int, dict[str, Any]], Any] | None = None

    def build(self, vocab_size: int, options: dict[str, Any]) -> Any:
        if self.config_from_sizes is not None:
            return self.model_class(self.config_from_sizes(vocab_size, dict(options)))
        options = dict(options)
        renames = {"block_size": self.block_size_field, **self.renames}
        for shared, own in renames.items():
            if shared in options and own != shared:
                options[own] = options.pop(shared)
        known = {f.name for f in fields(self.config_class)} - {"vocab_size"}
        unknown = set(options) - known
        if unknown:
            shared = {own: name for name, own in renames.items()}
            raise ValueError(f"unknown {self.name} model options {sorted(unknown)}; known: "
                             f"{sorted(shared.get(name, name) for name in known)}")
        return self.model_class(self.config_class(vocab_size=vocab_size, **options))


MODEL_KINDS: dict[str, ModelKind] = {}


def register_model(kind: ModelKind) -> ModelKind:
    """Make ``kind`` buildable by ``create_model`` (and so by configs, ``load_run`` and the experiments)."""
    MODEL_KINDS[kind.name] = kind
    return kind


def create_model(name: str, vocab_size: int, **options: Any) -> Any:
    """Build preset ``name`` (see ``PRESETS``) or a model of kind ``name`` ("gpt", "bert", "t5", "electra").

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
