"""Checkpoints: one ``.npz`` file holding the model, the optimizer, the RNG states and the run's position.

Arrays go into the archive as they are; everything else (numbers, strings, nested dicts of RNG state) goes
into one JSON document stored beside them, with ``{"__array__": key}`` where an array was. No pickle is used,
so a checkpoint can be opened safely and read from any language with an npz reader. Writes are atomic: a
temporary file, then a rename, so an interrupted save never leaves a half-written checkpoint behind; a save
that fails (a full disk) removes its temporary, keeps the previous checkpoint and says how much space it needed.
Whatever is wrong with a file on reading (truncated, a flipped bit, empty, not an archive, a metadata document
of the wrong type, object arrays) is one :class:`CheckpointError` naming it.

A checkpoint records the run's identity: the model kind and config, the objective and the tokenizer (its
kind, fingerprint and size, :func:`tokenizer_identity`), so a checkpoint is never resumed or sampled with
another model or another tokenizer (:func:`check_tokenizer_matches`).
"""
from __future__ import annotations

import errno
import json
import shutil
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..backend import to_host
from ..errors import MinipretrainError
from ..files import atomic_file

FORMAT_VERSION = 1


class CheckpointError(MinipretrainError, RuntimeError):
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
    meta = np.array(json.dumps(document))
    try:
        with atomic_file(path, "wb") as handle:
            np.savez(handle, __meta__=meta, **arrays)
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        needed = meta.nbytes + sum(a.nbytes for a in arrays.values())
        free = shutil.disk_usage(path.parent).free
        kept = f"the previous checkpoint {path} is kept" if path.exists() else f"nothing was written to {path}"
        raise CheckpointError(
            f"no space left on the disk of {path.parent}: the checkpoint needs about {_size(needed)} and "
            f"{_size(free)} are free; {kept}. Free some space, then continue with --resume") from error
    return path


def _size(num_bytes: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6)):
        if num_bytes >= scale:
            return f"{num_bytes / scale:.1f} {unit}"
    return f"{num_bytes / 1e3:.1f} kB"


#: What reading a damaged archive raises, from the zip layer (truncated, flipped CRC), NumPy (bad headers,
#: object arrays refused by allow_pickle=False) and JSON (a bad metadata document).
_DAMAGE = (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile, zlib.error)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint``; any damage is a ``CheckpointError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            document = json.loads(str(archive["__meta__"]))
            if not isinstance(document, dict):
                raise ValueError(f"its metadata is a JSON {type(document).__name__}, not an object")
            state = _unflatten(document, archive)
    except _DAMAGE as error:
        raise CheckpointError(f"{path} is not a minipretrain checkpoint or is damaged ({type(error).__name__}: "
                              f"{error}); use an earlier copy or train again") from error
    if state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format {state.get('format_version')}, expected {FORMAT_VERSION}")
    return state


def tokenizer_identity(tokenizer: Any) -> dict[str, Any] | None:
    """What a checkpoint records about the tokenizer its ids belong to (None when there is none)."""
    if tokenizer is None or not getattr(tokenizer, "is_trained", False):
        return None
    return {"kind": tokenizer.kind, "fingerprint": tokenizer.fingerprint(), "vocab_size": tokenizer.vocab_size}


def check_tokenizer_matches(state: dict[str, Any], tokenizer: Any, checkpoint: str | Path,
                            subject: str = "this run's tokenizer is") -> None:
    """Refuse ``tokenizer`` unless it is the one ``state`` (a checkpoint read from ``checkpoint``) was trained
    with; a checkpoint that predates tokenizer identities is accepted."""
    saved, mine = state.get("tokenizer"), tokenizer_identity(tokenizer)
    if not isinstance(saved, dict) or mine is None or saved.get("fingerprint") == mine["fingerprint"]:
        return
    raise CheckpointError(
        f"{subject} a {mine['kind']!r} tokenizer ({mine['vocab_size']} ids, fingerprint {mine['fingerprint'][:12]}), "
        f"not the tokenizer {checkpoint} was trained with: a {saved.get('kind')!r} tokenizer "
        f"({saved.get('vocab_size')} ids, fingerprint {str(saved.get('fingerprint'))[:12]}); its ids would decode to "
        "other text. Use the run's own tokenizer.json (data.tokenizer_path) or start a new run")
