"""Checkpoints: one ``.npz`` file holding the model, the optimizer, the RNG states and the run's position.

Arrays go into the archive as they are; everything else (numbers, strings, nested dicts of RNG state) goes
into one JSON document stored beside them, with ``{"__array__": key}`` where an array was. No pickle is used,
so a checkpoint can be opened safely and read from any language with an npz reader. Writes are atomic: a
temporary file, then a rename, so an interrupted save never leaves a half-written checkpoint behind.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..backend import to_host
from ..files import atomic_file

FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used here (missing, corrupt, or from another model or objective)."""


def _flatten(tree: Any, prefix: str, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(tree, dict):
        return {str(k): _flatten(v, f"{prefix}/{k}", arrays) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_flatten(v, f"{prefix}/{i}", arrays) for i, v in enumerate(tree)]
    if hasattr(tree, "shape") and hasattr(tree, "dtype") and getattr(tree, "ndim", 0) > 0:
        arrays[prefix] = to_host(tree)
        return {"__array__": prefix}
    if isinstance(tree, np.generic) or (hasattr(tree, "shape") and hasattr(tree, "item")):
        return tree.item()
    return tree


def _unflatten(tree: Any, arrays: Any) -> Any:
    if isinstance(tree, dict):
        if set(tree) == {"__array__"}:
            return np.array(arrays[tree["__array__"]])
        return {k: _unflatten(v, arrays) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_unflatten(v, arrays) for v in tree]
    return tree


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (nested dicts of arrays and JSON values) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    document = _flatten({"format_version": FORMAT_VERSION, **state}, "", arrays)
    with atomic_file(path, "wb") as handle:
        np.savez(handle, __meta__=np.array(json.dumps(document)), **arrays)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            document = json.loads(str(archive["__meta__"]))
            state = _unflatten(document, archive)
    except (OSError, ValueError, KeyError) as error:
        raise CheckpointError(f"{path} is not a minipretrain checkpoint or is damaged ({error})") from error
    if state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format {state.get('format_version')}, expected {FORMAT_VERSION}")
    return state
