"""Writing files so that nothing is lost: every file minipretrain writes (tokenizers, token caches,
checkpoints, downloads) goes through :func:`atomic_file`, and every JSON it writes through :func:`json_default`.

An interrupted write (Ctrl-C, a full disk, a failed checksum) must never leave a half-written file where a
good one is expected: the bytes go to a temporary file in the same folder, which replaces the target with one
atomic rename only once it is complete (and verified).
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np


@contextmanager
def atomic_file(path: str | os.PathLike[str], mode: str = "wb", suffix: str = ".tmp",
                verify: Callable[[Path], None] | None = None) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; when the block ends without error (and ``verify``,
    given the closed temporary file's path, raises nothing) it replaces ``path``; otherwise it is deleted."""
    path = Path(path)
    handle, temporary_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    temporary = Path(temporary_name)
    try:
        with os.fdopen(handle, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as file:
            yield file
        if verify is not None:
            verify(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def json_default(value: Any) -> Any:
    """``json.dumps(..., default=json_default)``: NumPy scalars and arrays, tuples, sets, paths and dataclasses."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, set)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
