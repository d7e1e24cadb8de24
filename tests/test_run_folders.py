"""Run folders: ``load_run`` rebuilds exactly the model ``build_run`` trained (one block-size rule).

Regression: a run trained from a *preset* with a ``seq_len`` other than the preset's block size used to train
fine, and then ``sample``, ``eval`` and ``fill-mask`` failed (``load_run`` rebuilt the model with
``block_size = seq_len``: ``transformer.wpe.weight: checkpoint (64, 64) vs model (32, 64)``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from minipretrain.data import MarkovCorpus
from minipretrain.models import PRESETS
from minipretrain.training import build_run, load_config, load_run

SEQ_LEN = 32


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "markov.txt"
    path.write_text(MarkovCorpus(alphabet_size=6, order=1, concentration=0.3, seed=3).text(20_000, np.random.default_rng(0)))
    return path


def write_config(tmp_path: Path, corpus_file: Path, preset: str, objective: str) -> Path:
    config = tmp_path / f"{preset}.toml"
    config.write_text(f"""
name = "{preset}"
[model]
preset = "{preset}"
[data]
path = "{corpus_file.as_posix()}"
tokenizer = "char"
seq_len = {SEQ_LEN}
cache_dir = "{(tmp_path / 'tokens').as_posix()}"
[objective]
name = "{objective}"
[training]
batch_size = 2
max_steps = 2
warmup_steps = 1
eval_batches = 1
""")
    return config


@pytest.mark.parametrize("preset, objective, command", [
    ("gpt-0.1m", "clm", ["sample", "--max-new-tokens", "5"]),
    ("bert-0.1m", "mlm", ["fill-mask", "--text", "ab[MASK]d"]),
])
def test_a_preset_run_with_another_seq_len_samples_evaluates_and_fills_masks(
        preset: str, objective: str, command: list[str], corpus_file: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from minipretrain.cli import main

    assert PRESETS[preset].block_size != SEQ_LEN  # the case that used to break
    config_path = write_config(tmp_path, corpus_file, preset, objective)
    run_dir = tmp_path / "run"
    assert main(["train", "--config", str(config_path), "--run-dir", str(run_dir), "--no-progress",
                 "--no-sample", "--no-yardsticks"]) == 0
    trained = build_run(load_config(config_path, [])).model
    _, _, loaded = load_run(run_dir)
    assert loaded.config == trained.config
    assert loaded.config.block_size == PRESETS[preset].block_size
    capsys.readouterr()
    assert main([command[0], "--run", str(run_dir), *command[1:]]) == 0
    assert capsys.readouterr().out.strip()
    assert main(["eval", "--run", str(run_dir), "--batch-size", "4"]) == 0
    assert '"perplexity"' in capsys.readouterr().out
