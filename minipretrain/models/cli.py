"""``python -m minipretrain models``: the presets with their real parameter counts."""
from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> None:
    """Register the ``models`` subcommand."""
    parser = subparsers.add_parser("models", help="list the model presets and their parameter counts")
    parser.add_argument("--vocab-size", type=int, default=None,
                        help="count with this vocabulary (default: 70 (characters) for CPU sizes; "
                        "GPT-2's 50257 or BERT's 30522 for GPU sizes)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print one line per preset: shape, total and non-embedding parameters, FLOPs per token."""
    from .accounting import expected_parameters, training_flops_per_token
    from .presets import PRESETS

    print(f"{'preset':<10} {'layers':>6} {'heads':>5} {'width':>5} {'block':>5} {'vocab':>6} "
          f"{'params':>9} {'non-emb':>9} {'GFLOP/token':>11}  notes")
    for name, preset in PRESETS.items():
        gpu_vocab = 50257 if preset.kind == "gpt" else 30522
        vocab = args.vocab_size or (70 if preset.description.startswith("CPU") else gpu_vocab)
        counts = expected_parameters(preset.kind, vocab, preset.n_layer, preset.n_embd, preset.block_size)
        # The models' own formula (their flops_per_token): the non-embedding weights plus the tied V·C projection.
        flops = training_flops_per_token(counts["non_embedding"] + vocab * preset.n_embd, preset.n_layer,
                                         preset.block_size, preset.n_embd)
        print(f"{name:<10} {preset.n_layer:>6} {preset.n_head:>5} {preset.n_embd:>5} {preset.block_size:>5} "
              f"{vocab:>6} {_human(counts['total']):>9} {_human(counts['non_embedding']):>9} "
              f"{flops / 1e9:>11.3f}  {preset.description}")
    return 0


def _human(count: int) -> str:
    return f"{count / 1e6:.2f}M" if count >= 1e5 else f"{count / 1e3:.1f}k"
