"""T5 with span corruption and ELECTRA with replaced-token detection through the one PreTrainer: they learn,
resume bit-identically (dropout on), accumulate token-weighted, and run from a config file (train + eval)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from minipretrain.cli import main
from minipretrain.data import MarkovCorpus, PretrainingDataset
from minipretrain.models import create_model
from minipretrain.objectives import data_layout, make_objective
from minipretrain.objectives.span_corruption import Seq2SeqPreparedBatch
from minipretrain.tokenizers import CharTokenizer
from minipretrain.tokenizers.sentinels import SentinelTokenizer
from minipretrain.training import PreTrainer

SEQ_LEN = 24


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    markov = MarkovCorpus(alphabet_size=6, order=1, concentration=0.3, seed=3)
    path = tmp_path_factory.mktemp("corpus") / "markov.txt"
    path.write_text(markov.text(40_000, rng=np.random.default_rng(0)))
    return path


def setup(kind: str, corpus_file: Path, cache: Path, dropout: float = 0.0):
    tokenizer = SentinelTokenizer(CharTokenizer(), 20) if kind == "t5" else CharTokenizer()
    objective_name = "span_corruption" if kind == "t5" else "rtd"
    train, val = (PretrainingDataset(corpus_file, tokenizer, SEQ_LEN, objective=data_layout(objective_name), split=split,
                                     cache_dir=cache) for split in ("train", "validation"))
    model = create_model(kind, tokenizer.vocab_size, n_layer=1, n_head=2, n_embd=32, block_size=SEQ_LEN + 2,
                         dropout=dropout, seed=0)
    objective = make_objective(objective_name, model, tokenizer)
    return tokenizer, train, val, model, objective


def trainer(model, objective, train, val, **options) -> PreTrainer:
    settings = dict(batch_size=8, learning_rate=3e-3, max_steps=16, warmup_steps=2, eval_interval=0, log_interval=1,
                    progress=False, seed=5)
    settings.update(options)
    return PreTrainer(model=model, objective=objective, dataset=train, eval_dataset=val, **settings)


@pytest.mark.parametrize("kind", ["t5", "electra"])
def test_it_learns_and_resumes_bit_identically(kind, corpus_file, tmp_path):
    _, train, val, model, objective = setup(kind, corpus_file, tmp_path / "cache", dropout=0.1)
    straight = trainer(model, objective, train, val)
    straight.train()
    losses = [r["loss"] for r in straight.history]
    assert np.mean(losses[-4:]) < np.mean(losses[:4]) - 0.3, losses
    _, _, _, model_a, objective_a = setup(kind, corpus_file, tmp_path / "cache", dropout=0.1)
    first = trainer(model_a, objective_a, train, val, checkpoint_dir=tmp_path / "run")
    first.train(until_step=7)
    _, _, _, model_b, objective_b = setup(kind, corpus_file, tmp_path / "cache", dropout=0.1)
    resumed = trainer(model_b, objective_b, train, val, checkpoint_dir=tmp_path / "run")
    resumed.train(resume=True)
    assert [r["loss"] for r in first.history] + [r["loss"] for r in resumed.history] == losses
    for (name, a), (_, b) in zip(straight.model.named_parameters(), resumed.model.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
    evaluation = resumed.evaluate()
    assert np.isfinite(evaluation["val_loss"]) and 0 <= evaluation["val_accuracy"] <= 1


def test_span_corruption_accumulates_token_weighted(corpus_file, tmp_path):
    """Two micro-batches, each L_sum / N_total, give the gradient of the whole batch's mean loss."""
    _, train, _, model, objective = setup("t5", corpus_file, tmp_path / "cache")
    whole = objective.prepare(train.get_batch(6, np.random.default_rng(0)), np.random.default_rng(1))
    halves = [Seq2SeqPreparedBatch(**{name: None if getattr(whole, name) is None else getattr(whole, name)[rows]
                                      for name in whole.__dataclass_fields__})
              for rows in (slice(0, 2), slice(2, 6))]
    halves[0].labels[:, -2:] = -100  # make the halves hold different numbers of targets
    whole.labels[:2, -2:] = -100
    objective.loss(model, whole)[0].backward()
    expected = {name: p.grad.copy() for name, p in model.named_parameters()}
    model.zero_grad()
    for half in halves:
        (objective.loss(model, half, reduction="sum")[0] * (1.0 / whole.num_targets)).backward()
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, expected[name], rtol=1e-5, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("kind, objective, shown", [
    ("t5", 'name = "span_corruption"\nnum_sentinels = 30', ("span-reconstruction accuracy", "<extra_id_0>")),
    ("electra", 'name = "rtd"\ndisc_weight = 50.0', ("discriminator AUC", "generator MLM accuracy")),
])
def test_train_and_eval_from_a_config(kind, objective, shown, corpus_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MINIPRETRAIN_CACHE_DIR", str(tmp_path / "cache"))
    config = tmp_path / "tiny.toml"
    config.write_text(f"""
name = "tiny-{kind}"
[model]
kind = "{kind}"
n_layer = 1
n_head = 2
n_embd = 32
dropout = 0.0
[data]
path = "{corpus_file.as_posix()}"
tokenizer = "char"
seq_len = {SEQ_LEN}
cache_dir = "{(tmp_path / 'tokens').as_posix()}"
[objective]
{objective}
[training]
batch_size = 4
max_steps = 4
warmup_steps = 1
eval_interval = 2
eval_batches = 2
""")
    run_dir = tmp_path / "runs" / kind
    assert main(["train", "--config", str(config), "--run-dir", str(run_dir), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "finished 4 steps" in out and all(text in out for text in shown), out
    assert ("perplexity" in out) == (kind == "t5"), out  # ELECTRA's MLM + 50·BCE has no perplexity
    assert main(["eval", "--run", str(run_dir), "--split", "validation", "--batch-size", "8"]) == 0
    assert '"loss"' in capsys.readouterr().out
