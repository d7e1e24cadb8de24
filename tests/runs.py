"""Helpers for tests that drive whole runs through the CLI: a small generated corpus, a tiny config, and
``cli(argv)`` that returns (exit code, stdout, stderr)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from minipretrain.data import MarkovCorpus

SEQ_LEN = 16


def write_corpus(path: Path, characters: int = 12_000, seed: int = 0, alphabet_size: int = 6) -> Path:
    """A Markov-chain text over the first ``alphabet_size`` letters (every letter in both splits)."""
    text = MarkovCorpus(alphabet_size=alphabet_size, order=1, concentration=0.3, seed=3).text(
        characters, np.random.default_rng(seed))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, Path)):
        return f'"{Path(value).as_posix() if isinstance(value, Path) else value}"'
    return repr(value)


def write_config(path: Path, corpus: Path, objective: str = "clm", **sections: dict[str, Any]) -> Path:
    """A tiny run config (1 layer, width 16, 4 steps) with ``sections`` merged into its tables."""
    kind = "gpt" if objective == "clm" else "bert"
    tables: dict[str, dict[str, Any]] = {
        "model": {"kind": kind, "n_layer": 1, "n_head": 2, "n_embd": 16, "dropout": 0.0},
        "data": {"path": corpus, "tokenizer": "char", "seq_len": SEQ_LEN, "cache_dir": path.parent / "tokens"},
        "objective": {"name": objective},
        "training": {"batch_size": 4, "max_steps": 4, "warmup_steps": 1, "eval_interval": 0, "eval_batches": 2,
                     "learning_rate": 3e-3, "seed": 5},
    }
    top = sections.pop("top", {})
    for name, values in sections.items():
        tables.setdefault(name, {}).update(values)
    lines = [f"{key} = {_toml_value(value)}" for key, value in top.items()]
    for name, values in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items() if value is not None]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``python -m minipretrain *argv`` in-process: (exit code, stdout, stderr)."""
    from minipretrain.cli import main

    capsys.readouterr()
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def train(capsys: pytest.CaptureFixture[str], config: Path, run_dir: Path, *extra: str) -> tuple[int, str, str]:
    """``train --config CONFIG --run-dir RUN_DIR --no-progress --no-sample --no-yardsticks *extra``."""
    return cli(capsys, "train", "--config", config, "--run-dir", run_dir, "--no-progress", "--no-sample",
               "--no-yardsticks", *extra)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative name -> bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
