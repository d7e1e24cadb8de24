"""Switching graph recording on and off (``no_grad``)."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

_state = {"enabled": True}


def is_grad_enabled() -> bool:
    """True while operations record the graph that ``backward`` walks."""
    return _state["enabled"]


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Inside this block no op records a graph: for evaluation and sampling, where no gradient is needed."""
    previous = _state["enabled"]
    _state["enabled"] = False
    try:
        yield
    finally:
        _state["enabled"] = previous
