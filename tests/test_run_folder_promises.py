"""What a run folder promises (docs/design.md): a refused command rewrites nothing, an existing run is never
replaced by accident, checkpoints carry their tokenizer's identity, and a failed save keeps the last good one.

Each test reproduces a case of issue 10 that used to lose or corrupt a run without a word.
"""
from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest

from minipretrain.files import atomic_file
from minipretrain.training import CheckpointError, load_checkpoint, load_run
from runs import SEQ_LEN, snapshot, train, write_config, write_corpus


def one_line_error(code: int, err: str) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus" / "markov.txt")


@pytest.fixture()
def trained(tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    """A finished 4-step run: (config path, run folder)."""
    config = write_config(tmp_path / "tiny.toml", corpus)
    run_dir = tmp_path / "runs" / "tiny"
    code, _, err = train(capsys, config, run_dir)
    assert code == 0, err
    return config, run_dir


def test_a_refused_resume_with_another_model_shape_rewrites_nothing(trained, capsys) -> None:
    config, run_dir = trained
    before = snapshot(run_dir)
    line = one_line_error(*train(capsys, config, run_dir, "--resume", "--set", "model.n_head=4",
                                 "--set", "training.max_steps=6")[::2])
    assert "model_config" in line or "n_head" in line
    assert snapshot(run_dir) == before
    _, _, model = load_run(run_dir)
    assert model.config.n_head == 2  # eval/sample still see the model that was trained


def test_a_refused_resume_on_another_corpus_keeps_the_runs_tokenizer(trained, tmp_path, capsys) -> None:
    config, run_dir = trained
    before = snapshot(run_dir)
    other = write_corpus(tmp_path / "other" / "markov.txt", alphabet_size=9)  # three more characters
    line = one_line_error(*train(capsys, config, run_dir, "--resume", "--set", f"data.path={other.as_posix()}",
                                 "--set", "training.max_steps=6")[::2])
    assert "tokenizer" in line
    assert snapshot(run_dir) == before


def test_a_second_run_into_an_existing_folder_is_refused_unless_overwrite(trained, capsys) -> None:
    config, run_dir = trained
    before = snapshot(run_dir)
    line = one_line_error(*train(capsys, config, run_dir, "--set", "model.n_embd=32")[::2])
    assert "--resume" in line and "--overwrite" in line and str(run_dir) in line
    assert snapshot(run_dir) == before
    code, _, err = train(capsys, config, run_dir, "--overwrite", "--set", "model.n_embd=32")
    assert code == 0, err
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "event" not in r] == [1, 2, 3, 4]  # a fresh log, not appended
    assert load_checkpoint(run_dir / "checkpoint.npz")["model_config"]["n_embd"] == 32
    assert json.loads((run_dir / "config.json").read_text())["model"]["n_embd"] == 32


def test_resume_and_overwrite_together_and_resume_without_a_checkpoint_are_refused(corpus, tmp_path, capsys) -> None:
    config = write_config(tmp_path / "tiny.toml", corpus)
    line = one_line_error(*train(capsys, config, tmp_path / "fresh", "--resume")[::2])
    assert "no checkpoint" in line and "fresh" in line
    assert not (tmp_path / "fresh").exists()
    line = one_line_error(*train(capsys, config, tmp_path / "fresh", "--resume", "--overwrite")[::2])
    assert "--resume" in line and "--overwrite" in line


def test_resume_with_max_steps_below_the_saved_step_is_refused(trained, capsys) -> None:
    config, run_dir = trained
    before = snapshot(run_dir)
    line = one_line_error(*train(capsys, config, run_dir, "--resume", "--set", "training.max_steps=2")[::2])
    assert "step 4" in line and "max_steps" in line
    assert snapshot(run_dir) == before


def test_resume_continues_the_run_and_appends_to_its_log(trained, capsys) -> None:
    config, run_dir = trained
    code, _, err = train(capsys, config, run_dir, "--resume", "--set", "training.max_steps=6")
    assert code == 0, err
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "event" not in r] == [1, 2, 3, 4, 5, 6]
    assert load_checkpoint(run_dir / "checkpoint.npz")["step"] == 6


def test_checkpoints_carry_the_tokenizer_and_a_foreign_one_is_refused(trained, tmp_path) -> None:
    from minipretrain.tokenizers import CharTokenizer

    _, run_dir = trained
    saved = load_checkpoint(run_dir / "checkpoint.npz")["tokenizer"]
    _, tokenizer, _ = load_run(run_dir)
    assert saved == {"kind": "char", "fingerprint": tokenizer.fingerprint(), "vocab_size": tokenizer.vocab_size}
    # Same vocabulary size, other symbols: every sample would decode to the wrong characters.
    impostor = CharTokenizer().train("".join(chr(ord("m") + i) for i in range(len(tokenizer.characters))))
    assert impostor.vocab_size == tokenizer.vocab_size
    impostor.save(run_dir / "tokenizer.json")
    with pytest.raises(CheckpointError, match="tokenizer.json.*not the tokenizer"):
        load_run(run_dir)


def test_a_tokenizer_of_another_kind_in_a_run_is_named(trained) -> None:
    from minipretrain.tokenizers import TextTokenizer

    _, run_dir = trained
    TextTokenizer(vocab_size=300).train("abcdef " * 50).save(run_dir / "tokenizer.json")
    with pytest.raises(CheckpointError, match="'bpe' tokenizer.*'char' tokenizer"):
        load_run(run_dir)


def test_a_trainer_refuses_a_checkpoint_of_another_tokenizer(corpus, tmp_path) -> None:
    from minipretrain.data import PretrainingDataset
    from minipretrain.models import create_model
    from minipretrain.objectives import CausalLanguageModeling
    from minipretrain.tokenizers import CharTokenizer
    from minipretrain.training import PreTrainer

    def trainer(tokenizer: CharTokenizer) -> PreTrainer:
        data = PretrainingDataset(corpus, tokenizer, SEQ_LEN, cache_dir=tmp_path / "tokens")
        model = create_model("gpt", tokenizer.vocab_size, n_layer=1, n_head=2, n_embd=16, block_size=SEQ_LEN)
        return PreTrainer(model=model, objective=CausalLanguageModeling(model, tokenizer), dataset=data,
                          batch_size=2, max_steps=3, warmup_steps=0, progress=False, checkpoint_dir=tmp_path / "r")

    characters = "".join(sorted(set(corpus.read_text())))
    first, other = CharTokenizer().train(characters + "y"), CharTokenizer().train(characters + "z")
    assert other.vocab_size == first.vocab_size and other.fingerprint() != first.fingerprint()
    trainer(first).train(max_steps=2)
    with pytest.raises(CheckpointError, match="tokenizer"):
        trainer(other).train(resume=True)


def test_config_json_that_disagrees_with_the_checkpoint_is_refused(trained) -> None:
    _, run_dir = trained
    config = json.loads((run_dir / "config.json").read_text())
    config["model"]["n_head"] = 4  # what a refused command used to leave behind
    (run_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="config.json.*n_head"):
        load_run(run_dir)


def test_seq_len_longer_than_the_block_size_is_refused_when_the_run_is_built(corpus, tmp_path, capsys) -> None:
    from minipretrain.training import ConfigError, build_run, load_config

    config = write_config(tmp_path / "tiny.toml", corpus, model={"block_size": 8})
    with pytest.raises(ConfigError, match=r"seq_len = 16.*block_size = 8.*data\.seq_len.*model\.block_size"):
        build_run(load_config(config))
    one_line_error(*train(capsys, config, tmp_path / "run")[::2])
    assert not (tmp_path / "run").exists()


def test_atomic_writes_to_one_file_never_share_a_temporary(tmp_path) -> None:
    target = tmp_path / "checkpoint.npz"
    with atomic_file(target, "wb") as first, atomic_file(target, "wb") as second:
        assert first.name != second.name
        first.write(b"first")
        second.write(b"second")
    assert target.read_bytes() in (b"first", b"second")
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"]


def test_a_full_disk_at_the_final_save_keeps_the_previous_checkpoint(corpus, tmp_path, monkeypatch) -> None:
    import minipretrain.training.checkpoint as checkpoint_module
    from minipretrain.data import PretrainingDataset
    from minipretrain.models import create_model
    from minipretrain.objectives import CausalLanguageModeling
    from minipretrain.tokenizers import CharTokenizer
    from minipretrain.training import PreTrainer

    tokenizer = CharTokenizer()
    data = PretrainingDataset(corpus, tokenizer, SEQ_LEN, cache_dir=tmp_path / "tokens")
    model = create_model("gpt", tokenizer.vocab_size, n_layer=1, n_head=2, n_embd=16, block_size=SEQ_LEN)
    run_dir = tmp_path / "run"
    trainer = PreTrainer(model=model, objective=CausalLanguageModeling(model, tokenizer), dataset=data,
                         batch_size=2, max_steps=6, warmup_steps=0, progress=False, checkpoint_dir=run_dir)
    trainer.train(until_step=2)
    previous = (run_dir / "checkpoint.npz").read_bytes()

    def disk_full(handle, **arrays):
        handle.write(b"\0" * 1000)  # part of the archive made it to disk
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_module.np, "savez", disk_full)
    with pytest.raises(CheckpointError, match=r"no space left.*needs about [\d.]+ [kM]B.*previous checkpoint"):
        trainer.train()
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoint.npz", "log.jsonl"]  # no temporary left
    assert (run_dir / "checkpoint.npz").read_bytes() == previous
    assert load_checkpoint(run_dir / "checkpoint.npz")["step"] == 2


def test_eval_after_a_refused_command_gives_the_same_loss(trained, capsys) -> None:
    from runs import cli

    config, run_dir = trained
    code, first, err = cli(capsys, "eval", "--run", run_dir, "--batch-size", "4")
    assert code == 0, err
    train(capsys, config, run_dir, "--resume", "--set", "model.n_head=4", "--set", "training.max_steps=6")
    code, second, err = cli(capsys, "eval", "--run", run_dir, "--batch-size", "4")
    assert code == 0, err
    assert json.loads(second)["loss"] == json.loads(first)["loss"]
    assert np.isfinite(json.loads(first)["loss"])


def test_a_run_folder_is_written_by_one_process_at_a_time(tmp_path) -> None:
    from minipretrain.training.run_folder import RunFolderError, claim_run_folder

    run_dir = tmp_path / "run"
    with claim_run_folder(run_dir, resume=False, overwrite=False):
        with pytest.raises(RunFolderError, match="another process is writing"):
            with claim_run_folder(run_dir, resume=False, overwrite=False):
                pass  # pragma: no cover - refused
    with claim_run_folder(run_dir, resume=False, overwrite=False):  # released when the first run ended
        pass


def test_a_run_whose_checkpoint_cannot_fit_is_refused_before_training(corpus, tmp_path, capsys, monkeypatch) -> None:
    import shutil

    import minipretrain.training.run_folder as run_folder

    config = write_config(tmp_path / "tiny.toml", corpus)
    monkeypatch.setattr(run_folder.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9, 1000))
    line = one_line_error(*train(capsys, config, tmp_path / "run")[::2])
    assert "needs about" in line and "MB are free" in line
    assert not (tmp_path / "run").exists()


def test_a_missing_gpu_is_one_line(corpus, tmp_path, capsys) -> None:
    from minipretrain.backend import cupy_available

    if cupy_available():
        pytest.skip("this machine has a GPU")
    config = write_config(tmp_path / "tiny.toml", corpus)
    line = one_line_error(*train(capsys, config, tmp_path / "run", "--device", "cuda")[::2])
    assert "cuda" in line and "cpu" in line
    assert not (tmp_path / "run").exists()
