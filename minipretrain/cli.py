"""``python -m minipretrain``: one entry point, a subcommand per area (data, models, train, sample, eval).

Each area registers its own subcommand with an ``add_parser(subparsers)`` function, imported lazily so that
``python -m minipretrain data ...`` never pays for importing the models or the trainer.

Errors: a user's mistake (any :class:`~minipretrain.errors.MinipretrainError`: a config, checkpoint, tokenizer,
corpus, download, state-dict or device error) is printed as one line on stderr, ``error: <what was wrong and
what to do>``, with exit code 2; ``--debug`` (or ``MINIPRETRAIN_DEBUG=1``) prints the traceback as well.
Ctrl-C exits with 130 (a training run saves its checkpoint first), so scripts can tell it from a finished run.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from typing import Sequence

from .errors import MinipretrainError

USER_ERROR_EXIT = 2
INTERRUPTED_EXIT = 130  # 128 + SIGINT, what a shell reports for a command stopped by Ctrl-C
DEBUG_ENV = "MINIPRETRAIN_DEBUG"

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
    parser.add_argument("--debug", action="store_true",
                        help=f"show the traceback of an error too (or set {DEBUG_ENV}=1)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = [_AREAS[command]] if command in _AREAS else list(dict.fromkeys(_AREAS.values()))
    for module_name in modules:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand; returns the process exit code (2: a user error, 130: Ctrl-C)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]  # accepted before or after the subcommand
    try:
        command = next((a for a in argv if not a.startswith("-")), None)
        parser = build_parser(command)
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return USER_ERROR_EXIT
        return int(args.func(args) or 0)
    except MinipretrainError as error:
        if debug:
            traceback.print_exc()
        print(f"error: {_one_line(error)}", file=sys.stderr)
        return USER_ERROR_EXIT
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print("interrupted", file=sys.stderr)
        return INTERRUPTED_EXIT


def _one_line(error: BaseException) -> str:
    """The error's message on one line (a message is written for people; a newline inside it is a space)."""
    return " ".join(str(error).split())
