"""``python -m minipretrain models``: the presets with their real parameter counts."""
from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> None:
    """Register the ``models`` subcommand."""
    parser = subparsers.add_parser("models", help="list the model presets and their parameter counts")
    parser.add_argument("--vocab-size", type=int, default=None,
                        help="count with this vocabulary (default: 70 (characters) for CPU sizes; "
                        "GPT-2's 50257, T5's 32128 or BERT's 30522 for GPU sizes)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print one line per preset: shape, total and non-embedding parameters, FLOPs per token."""
    from .accounting import expected_flops_per_token, expected_parameters
    from .presets import PRESETS

    print(f"{'preset':<12} {'layers':>6} {'heads':>5} {'width':>5} {'block':>5} {'vocab':>6} "
          f"{'params':>9} {'non-emb':>9} {'GFLOP/token':>11}  notes")
    for name, preset in PRESETS.items():
        gpu_vocab = {"gpt": 50257, "t5": 32128}.get(preset.kind, 30522)  # GPT-2's, T5's, BERT's/ELECTRA's
        vocab = args.vocab_size or (70 if preset.description.startswith("CPU") else gpu_vocab)
        counts = expected_parameters(preset.kind, vocab, preset.n_layer, preset.n_embd, preset.block_size,
                                     n_head=preset.n_head)
        flops = expected_flops_per_token(preset.kind, vocab, preset.n_layer, preset.n_head, preset.n_embd,
                                         preset.block_size)  # what the built model's flops_per_token says
        print(f"{name:<12} {preset.n_layer:>6} {preset.n_head:>5} {preset.n_embd:>5} {preset.block_size:>5} "
              f"{vocab:>6} {_human(counts['total']):>9} {_human(counts['non_embedding']):>9} "
              f"{flops / 1e9:>11.3f}  {preset.description}")
    return 0


def _human(count: int) -> str:
    return f"{count / 1e6:.2f}M" if count >= 1e5 else f"{count / 1e3:.1f}k"
