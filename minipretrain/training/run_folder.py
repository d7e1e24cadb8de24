"""What a run folder promises (docs/design.md, "What a run folder promises").

A run folder ``runs/<name>/`` holds ``config.json``, ``tokenizer.json``, ``checkpoint.npz`` and ``log.jsonl``.

* Nothing is written into it until the command was checked end to end: the config, the tokenizer and, for
  ``--resume``, the checkpoint's compatibility (model, objective, tokenizer fingerprint, step).
* An existing run is never replaced by accident: training into a folder that holds one needs ``--resume``
  (continue it) or ``--overwrite`` (replace it: its checkpoint and log are removed first).
* One process at a time: the folder is locked (``flock`` on the folder itself) while a run writes to it.
* Every file is written atomically (:func:`minipretrain.files.atomic_file`, a unique temporary beside it,
  then a rename); ``log.jsonl`` is appended line by line.
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import MinipretrainError
from ..files import atomic_file, json_default

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, the other checks still hold
    fcntl = None

#: The files of a run folder: the first three make a finished run that ``load_run`` can open.
RUN_FILES = ("config.json", "tokenizer.json", "checkpoint.npz", "log.jsonl")


class RunFolderError(MinipretrainError, ValueError):
    """A run folder cannot be used for this command (it holds another run, lacks a checkpoint, is busy)."""


def check_run_folder(run_dir: Path, resume: bool, overwrite: bool) -> None:
    """Refuse what the folder alone rules out, before anything is built or written."""
    if resume and overwrite:
        raise RunFolderError(f"--resume continues the run in {run_dir} and --overwrite replaces it: give one of them")
    checkpoint = run_dir / "checkpoint.npz"
    if resume and not checkpoint.is_file():
        raise RunFolderError(f"--resume: no checkpoint at {checkpoint}; train without --resume to start this run")
    present = [name for name in RUN_FILES if (run_dir / name).exists()]
    if present and not (resume or overwrite):
        raise RunFolderError(f"{run_dir} already holds a run ({', '.join(present)}): continue it with --resume, "
                             "replace it with --overwrite, or choose another --run-dir")


def check_free_space(run_dir: Path, checkpoint_bytes: int) -> None:
    """Refuse to start a run whose checkpoint would not fit on the disk (better now than after the training)."""
    existing = next((p for p in (run_dir, *run_dir.parents) if p.exists()), Path("."))
    free = shutil.disk_usage(existing).free
    if free < checkpoint_bytes:
        raise RunFolderError(f"{run_dir}: a checkpoint of this run needs about {checkpoint_bytes / 1e6:.1f} MB, "
                             f"but only {free / 1e6:.1f} MB are free on that disk; free some space first")


@contextmanager
def claim_run_folder(run_dir: Path, resume: bool, overwrite: bool) -> Iterator[Path]:
    """Lock ``run_dir`` for this process while the block runs, re-checking it under the lock (another process
    may have started a run there since); with ``overwrite`` the old checkpoint and log are removed."""
    run_dir.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(run_dir, os.O_RDONLY)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunFolderError(f"another process is writing to {run_dir}: wait for it to finish, "
                                     "or choose another --run-dir") from None
        check_run_folder(run_dir, resume, overwrite)
        if overwrite:
            for name in ("checkpoint.npz", "log.jsonl"):
                (run_dir / name).unlink(missing_ok=True)
        yield run_dir
    finally:
        os.close(descriptor)  # closing releases the lock


def write_run_files(run_dir: Path, config: dict[str, Any], tokenizer: Any) -> None:
    """``tokenizer.json`` and ``config.json`` (the resolved config), each atomically."""
    tokenizer.save(run_dir / "tokenizer.json")
    with atomic_file(run_dir / "config.json", "w") as file:
        file.write(json.dumps(config, indent=2, default=json_default) + "\n")
