"""The errors that mean "the input was wrong", as opposed to a bug in minipretrain.

Every error type the project raises for a user's mistake (a config, a checkpoint, a tokenizer, a corpus, a
download, a state dict, a device) derives from :class:`MinipretrainError` as well as from the built-in type
it always was (``ValueError``, ``RuntimeError``), so existing ``except ValueError`` code keeps working.
``python -m minipretrain`` prints such an error as one line on stderr and exits with code 2; anything else is a
bug and keeps its traceback. The message is the whole story: what was wrong, and what to do.
"""
from __future__ import annotations


class MinipretrainError(Exception):
    """Base of every user-facing error: the CLI shows its message as one line (``--debug`` adds the traceback)."""


class ModelKindError(MinipretrainError, ValueError):
    """A model of the wrong kind for the call: generation with an encoder, fill-mask with a causal model, or
    an objective scored on windows cut for another one."""


class InputError(MinipretrainError, ValueError):
    """An argument given for one call is malformed: a text without the ``[MASK]`` it needs, a prompt longer
    than the model reads."""
