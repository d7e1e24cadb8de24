"""Named model sizes. CPU sizes train in minutes here; the others are the original description's GPU sizes.

The nominal size in a name is roughly the *non-embedding* parameter count (what Kaplan et al. scale), except
``*-25m``, the original description's 6-layer, 512-wide model, which has 18.9M non-embedding parameters and
about 25M in all with a ~10k vocabulary. ``python -m minipretrain models`` prints the real counts for a given
vocabulary; ``minipretrain.models.create_model(name, vocab_size)`` builds one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Preset:
    """The shape of a named model; the vocabulary size comes from the tokenizer at creation time."""

    kind: str  # a registered model kind: "gpt", "bert", "t5", "electra"
    n_layer: int
    n_head: int
    n_embd: int
    block_size: int
    description: str

    def fields(self) -> dict[str, Any]:
        """The config fields a preset fixes (``block_size``: the longest sequence, whatever the kind calls it)."""
        return {"n_layer": self.n_layer, "n_head": self.n_head, "n_embd": self.n_embd, "block_size": self.block_size}


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


def presets_for(kind: str) -> dict[str, Preset]:
    """``<kind>-<size>`` presets of every shape above (a new model kind adds its own with one line)."""
    return {f"{kind}-{size}": Preset(kind, layers, heads, width, block, description)
            for size, (layers, heads, width, block, description) in _SHAPES.items()}


#: GPT's and BERT's; models/__init__.py adds T5's and ELECTRA's (same shapes) when it registers those kinds.
PRESETS: dict[str, Preset] = {**presets_for("gpt"), **presets_for("bert")}
