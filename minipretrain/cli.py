"""``python -m minipretrain``: one entry point, a subcommand per area (data, models, train, sample, eval).

Each area registers its own subcommand with an ``add_parser(subparsers)`` function, imported lazily so that
``python -m minipretrain data ...`` never pays for importing the models or the trainer.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

# subcommand -> module whose add_parser(subparsers) registers it
_AREAS = {
    "data": "minipretrain.data.cli",
    "models": "minipretrain.models.cli",
    "train": "minipretrain.training.cli",
    "sample": "minipretrain.training.cli",
    "eval": "minipretrain.training.cli",
    "fill-mask": "minipretrain.training.cli",
    "experiment": "minipretrain.experiments.cli",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``command`` only that area's module is imported."""
    parser = argparse.ArgumentParser(prog="python -m minipretrain",
                                     description="minipretrain: data, models, training, sampling, evaluation and experiments.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = [_AREAS[command]] if command in _AREAS else list(dict.fromkeys(_AREAS.values()))
    for module_name in modules:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)
