"""The PreTrainer end to end: it learns, resumes exactly, stops cleanly on NaN and Ctrl-C, refuses foreign
checkpoints; plus whole-split evaluation, run configs and the train/sample/eval commands."""
from __future__ import annotations

import json
import math
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from minipretrain.data import MarkovCorpus, PretrainingDataset
from minipretrain.evaluation import evaluate, evaluate_perplexity
from minipretrain.models import BERT, GPT, BERTConfig, GPTConfig
from minipretrain.objectives import CausalLanguageModeling, MaskedLanguageModeling
from minipretrain.tokenizers import CharTokenizer
from minipretrain.training import CheckpointError, PreTrainer, TrainingDivergedError, load_checkpoint
from minipretrain.training.config import ConfigError, apply_overrides, load_config, parse_value
from minipretrain.training.hardware import matmul_peak_flops

SEQ_LEN = 16


@pytest.fixture(scope="module")
def markov() -> MarkovCorpus:
    return MarkovCorpus(alphabet_size=6, order=1, concentration=0.3, seed=3)


@pytest.fixture(scope="module")
def corpus_file(markov: MarkovCorpus, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "markov.txt"
    path.write_text(markov.text(60_000, rng=np.random.default_rng(0)))
    return path


def datasets(corpus_file: Path, cache: Path, objective: str = "clm") -> tuple[PretrainingDataset, PretrainingDataset]:
    tokenizer = CharTokenizer()
    train = PretrainingDataset(corpus_file, tokenizer, SEQ_LEN, objective=objective, split="train", cache_dir=cache)
    val = PretrainingDataset(corpus_file, tokenizer, SEQ_LEN, objective=objective, split="validation", cache_dir=cache)
    return train, val


def tiny_gpt(vocab_size: int, dropout: float = 0.0, seed: int = 0) -> GPT:
    return GPT(GPTConfig(vocab_size=vocab_size, n_layer=1, n_head=2, n_embd=32, block_size=SEQ_LEN,
                         dropout=dropout, seed=seed))


def trainer_for(model: GPT, train: PretrainingDataset, val: PretrainingDataset, **options: object) -> PreTrainer:
    settings = dict(batch_size=8, learning_rate=3e-3, max_steps=20, warmup_steps=2, eval_interval=0,
                    log_interval=1, progress=False, seed=5)
    settings.update(options)
    return PreTrainer(model=model, objective=CausalLanguageModeling(model, train.tokenizer), dataset=train,
                      eval_dataset=val, **settings)


def test_clm_training_beats_the_unigram_entropy_and_respects_the_entropy_rate(
        markov: MarkovCorpus, corpus_file: Path, tmp_path: Path) -> None:
    train, val = datasets(corpus_file, tmp_path)
    text = corpus_file.read_text()
    counts = np.unique(list(text), return_counts=True)[1]
    unigram_entropy = float(-(counts / counts.sum() * np.log(counts / counts.sum())).sum())
    model = tiny_gpt(train.tokenizer.vocab_size)
    trainer = trainer_for(model, train, val, max_steps=150, eval_interval=150)
    result = trainer.train()
    val_loss = result.evaluations[-1]["val_loss"]
    # The chain's entropy rate is the floor no model can beat (up to the sampling noise of ~10k validation
    # targets, well under 0.05 nats); a model that learned the transitions sits far below the unigram entropy.
    assert markov.entropy_rate() - 0.05 < val_loss < unigram_entropy - 0.3
    assert result.steps == 150 and result.tokens_seen == 150 * 8 * SEQ_LEN
    record = trainer.history[-1]
    assert set(record) >= {"step", "tokens", "loss", "lr", "grad_norm", "tokens_per_s", "mfu"}
    # The last step (index 149) is one step short of the cosine's end at min_lr = lr / 10.
    progress = (149 - 2) / (150 - 2)
    assert record["lr"] == pytest.approx(3e-4 + 0.5 * (1 + math.cos(math.pi * progress)) * (3e-3 - 3e-4))


def test_resumed_run_equals_the_uninterrupted_one(corpus_file: Path, tmp_path: Path) -> None:
    train, val = datasets(corpus_file, tmp_path / "cache")
    straight = trainer_for(tiny_gpt(train.tokenizer.vocab_size, dropout=0.1), train, val)
    straight.train()
    first = trainer_for(tiny_gpt(train.tokenizer.vocab_size, dropout=0.1), train, val,
                        checkpoint_dir=tmp_path / "run")
    first.train(until_step=8)
    assert first.step == 8
    resumed = trainer_for(tiny_gpt(train.tokenizer.vocab_size, dropout=0.1, seed=0), train, val,
                          checkpoint_dir=tmp_path / "run")
    resumed.train(resume=True)
    assert resumed.step == 20
    straight_losses = [r["loss"] for r in straight.history]
    assert [r["loss"] for r in first.history] + [r["loss"] for r in resumed.history] == straight_losses
    for (name, a), (_, b) in zip(straight.model.named_parameters(), resumed.model.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(corpus_file: Path, tmp_path: Path) -> None:
    train, val = datasets(corpus_file, tmp_path / "cache")
    trainer = trainer_for(tiny_gpt(train.tokenizer.vocab_size), train, val, checkpoint_dir=tmp_path / "run")
    trainer.train(max_steps=3)
    saved = (tmp_path / "run" / "checkpoint.npz").read_bytes()
    trainer.model.transformer.wte.weight.data[:] = np.nan
    with pytest.raises(TrainingDivergedError, match="loss became nan at step 4.*checkpoint.npz"):
        trainer.train(max_steps=10)
    assert trainer.step == 3
    assert (tmp_path / "run" / "checkpoint.npz").read_bytes() == saved


def test_ctrl_c_saves_a_checkpoint_and_returns(corpus_file: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    train, val = datasets(corpus_file, tmp_path / "cache")
    trainer = trainer_for(tiny_gpt(train.tokenizer.vocab_size), train, val, checkpoint_dir=tmp_path / "run")
    original_step = trainer.train_step

    def step_then_interrupt() -> dict:
        record = original_step()
        if trainer.step == 4:
            os.kill(os.getpid(), signal.SIGINT)
        return record

    monkeypatch.setattr(trainer, "train_step", step_then_interrupt)
    result = trainer.train()
    assert result.stopped_early == "interrupted" and trainer.step == 4
    assert load_checkpoint(tmp_path / "run" / "checkpoint.npz")["step"] == 4
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_checkpoint_of_another_model_or_objective_is_refused(corpus_file: Path, tmp_path: Path) -> None:
    train, val = datasets(corpus_file, tmp_path / "cache")
    trainer = trainer_for(tiny_gpt(train.tokenizer.vocab_size), train, val, checkpoint_dir=tmp_path / "run")
    trainer.train(max_steps=2)
    wider = GPT(GPTConfig(vocab_size=train.tokenizer.vocab_size, n_layer=1, n_head=2, n_embd=48, block_size=SEQ_LEN))
    other = trainer_for(wider, train, val, checkpoint_dir=tmp_path / "run")
    with pytest.raises(CheckpointError, match="model_config"):
        other.train(resume=True)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        trainer_for(tiny_gpt(train.tokenizer.vocab_size), train, val,
                    checkpoint_dir=tmp_path / "elsewhere").train(resume=True)


def test_bad_settings_are_refused(corpus_file: Path, tmp_path: Path) -> None:
    train, val = datasets(corpus_file, tmp_path / "cache")
    model = tiny_gpt(train.tokenizer.vocab_size)
    with pytest.raises(ValueError, match="warmup_steps"):
        trainer_for(model, train, val, max_steps=5, warmup_steps=10)
    with pytest.raises(TypeError, match="unknown options"):
        trainer_for(model, train, val, learning_rat=1e-3)
    bert = BERT(BERTConfig(vocab_size=train.tokenizer.vocab_size, n_layer=1, n_head=2, n_embd=16,
                           max_position_embeddings=SEQ_LEN))
    with pytest.raises(ValueError):
        PreTrainer(model=bert, objective=CausalLanguageModeling(model, train.tokenizer), dataset=train)


def test_perplexity_is_exp_of_the_token_weighted_nll_over_the_whole_split(corpus_file: Path, tmp_path: Path) -> None:
    from minipretrain.ops import cross_entropy

    train, val = datasets(corpus_file, tmp_path / "cache")
    model = tiny_gpt(train.tokenizer.vocab_size)
    total, count = 0.0, 0
    for batch in val.iter_eval_batches(7):
        ids = batch.input_ids
        targets = np.where(batch.attention_mask[:, 1:], ids[:, 1:], -100)
        total += cross_entropy(model(ids[:, :-1]), targets, reduction="sum").item()
        count += int((targets != -100).sum())
    assert count == val.num_tokens - 1  # every token but the first is predicted exactly once
    assert evaluate_perplexity(model, val, batch_size=5) == pytest.approx(math.exp(total / count), rel=1e-5)


def test_interim_evaluations_estimate_on_the_first_batches_and_the_last_scores_the_whole_split(
        corpus_file: Path, tmp_path: Path) -> None:
    train, val = datasets(corpus_file, tmp_path / "cache")
    trainer = trainer_for(tiny_gpt(train.tokenizer.vocab_size), train, val, max_steps=6, eval_interval=2,
                          eval_batch_size=4, interim_eval_batches=2)
    interim_a, interim_b, last = trainer.train().evaluations
    first_two = [b for _, b in zip(range(2), val.iter_eval_batches(4))]
    estimate_targets = sum(int(b.attention_mask[:, 1:].sum()) for b in first_two)
    assert interim_a["val_targets"] == interim_b["val_targets"] == estimate_targets < val.num_tokens - 1
    assert last["val_targets"] == val.num_tokens - 1  # the whole split, every token but the first
    assert last["val_loss"] == pytest.approx(trainer.evaluate()["val_loss"], rel=1e-12)
    with pytest.raises(ValueError, match="interim_eval_batches"):
        trainer_for(tiny_gpt(train.tokenizer.vocab_size), train, val, interim_eval_batches=0)


def test_mlm_training_and_fixed_evaluation_masks(corpus_file: Path, tmp_path: Path) -> None:
    train, val = datasets(corpus_file, tmp_path / "cache", objective="mlm")
    bert = BERT(BERTConfig(vocab_size=train.tokenizer.vocab_size, n_layer=1, n_head=2, n_embd=32,
                           max_position_embeddings=SEQ_LEN, dropout=0.0))
    objective = MaskedLanguageModeling(bert, train.tokenizer)
    first = evaluate(bert, val, objective, batch_size=8)
    assert evaluate(bert, val, objective, batch_size=8) == first  # same seeded masks, same answer
    trainer = PreTrainer(model=bert, objective=objective, dataset=train, eval_dataset=val, batch_size=16,
                         learning_rate=3e-3, max_steps=60, warmup_steps=5, eval_interval=60, progress=False)
    result = trainer.train()
    last = result.evaluations[-1]
    assert last["val_loss"] < first.loss - 0.3
    assert last["val_accuracy"] > first.accuracy


def test_config_files_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('name = "x"\n[model]\nn_layer = 2\n[training]\nlearning_rate = 1e-3\n')
    config = load_config(path, ["training.max_steps=7", "model.dropout=0.1", "data.corpus=tinyshakespeare"])
    assert config["training"] == {"learning_rate": 1e-3, "max_steps": 7}
    assert config["model"] == {"n_layer": 2, "dropout": 0.1} and config["objective"] == {}
    assert parse_value("[0.9, 0.99]") == [0.9, 0.99] and parse_value("true") is True and parse_value("abc") == "abc"
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(config, ["training.max_steps"])
    with pytest.raises(ConfigError, match="unknown section"):
        apply_overrides(config, ["trainer.max_steps=3"])
    with pytest.raises(ConfigError, match="no config file"):
        load_config(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("[model\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path / "bad.toml")


def test_train_sample_and_eval_commands(corpus_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from minipretrain.cli import main

    monkeypatch.setenv("MINIPRETRAIN_CACHE_DIR", str(tmp_path / "cache"))
    config = tmp_path / "tiny.toml"
    config.write_text(f"""
name = "tiny"
[model]
kind = "gpt"
n_layer = 1
n_head = 2
n_embd = 16
[data]
path = "{corpus_file.as_posix()}"
tokenizer = "char"
seq_len = {SEQ_LEN}
cache_dir = "{(tmp_path / 'tokens').as_posix()}"
[objective]
name = "clm"
[training]
batch_size = 4
max_steps = 12
warmup_steps = 2
eval_interval = 6
eval_batches = 3
""")
    run_dir = tmp_path / "runs" / "tiny"
    assert main(["train", "--config", str(config), "--run-dir", str(run_dir), "--no-progress",
                 "--set", "training.learning_rate=2e-3"]) == 0
    out = capsys.readouterr().out
    assert "finished 12 steps" in out and "validation loss" in out and "--- sample ---" in out
    # The yardsticks beside the model's own validation loss (the last evaluation's, step 12)
    final = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()
             if '"eval"' in line][-1]["val_loss"]
    table = out[out.index("yardstick  "):].splitlines()
    assert any("5-gram" in line for line in table) and any("lzma" in line for line in table)
    assert [line.split()[-2] for line in table if line.startswith("this model")] == [f"{final:.4f}"]
    assert {p.name for p in run_dir.iterdir()} >= {"checkpoint.npz", "tokenizer.json", "config.json", "log.jsonl"}
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "event" not in r] == list(range(1, 13))  # every step is logged
    assert [r["step"] for r in records if r.get("event") == "eval"] == [6, 12]
    assert main(["sample", "--run", str(run_dir), "--prompt", "ab", "--max-new-tokens", "20"]) == 0
    from minipretrain.evaluation import generate
    from minipretrain.training.cli import load_run

    _, tokenizer, model = load_run(run_dir)
    expected = generate(model, [tokenizer.encode("ab")], max_new_tokens=20, temperature=0.8, seed=0)
    assert expected.shape == (1, 22)
    assert capsys.readouterr().out == tokenizer.decode(expected[0].tolist()) + "\n"
    assert main(["eval", "--run", str(run_dir), "--split", "validation"]) == 0
    assert '"perplexity"' in capsys.readouterr().out


def test_matmul_peak_is_measured_once_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINIPRETRAIN_CACHE_DIR", str(tmp_path))
    peak = matmul_peak_flops("cpu")
    assert peak > 1e8
    assert (tmp_path / "peak.json").is_file()
    assert matmul_peak_flops("cpu") == peak


def test_mlm_run_commands_fill_mask_and_refuse_sampling(corpus_file: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from minipretrain.cli import main

    config = tmp_path / "tiny_mlm.toml"
    config.write_text(f"""
[model]
kind = "bert"
n_layer = 1
n_head = 2
n_embd = 16
dropout = 0.0
[data]
path = "{corpus_file.as_posix()}"
tokenizer = "char"
seq_len = {SEQ_LEN}
cache_dir = "{(tmp_path / 'tokens').as_posix()}"
[objective]
name = "mlm"
[training]
batch_size = 4
max_steps = 6
warmup_steps = 1
eval_batches = 2
""")
    run_dir = tmp_path / "run"
    assert main(["train", "--config", str(config), "--run-dir", str(run_dir), "--no-progress", "--no-sample"]) == 0
    capsys.readouterr()
    assert main(["fill-mask", "--run", str(run_dir), "--text", "ab[MASK]d[MASK]", "--top-k", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all(line.count("'") == 4 for line in lines)  # two masks, two candidates each
    assert main(["sample", "--run", str(run_dir)]) == 2
    assert "fill-mask" in capsys.readouterr().err
