"""The trainer's wiring, pinned: each test fails when one connection inside ``PreTrainer`` (or a model's
feed-forward) is cut, bugs the op-level gradient checks cannot see.

Seeded one at a time, each of these survived the rest of the suite before these tests existed: the step's
accumulation averaging micro-batch means; every parameter decayed; gradient clipping skipped; ``betas``
ignored; evaluation in train mode (dropout on); the MLM masking RNG not restored on resume; BERT's
feed-forward using tanh-GELU instead of erf-GELU.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.special import erf

import minipretrain as mp
from minipretrain.data import MarkovCorpus, PretrainingDataset
from minipretrain.models import create_model
from minipretrain.objectives import MaskedLanguageModeling, PreparedBatch
from minipretrain.tokenizers import CharTokenizer
from minipretrain.training import PreTrainer

SEQ_LEN = 16


@pytest.fixture(scope="module")
def mlm_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[PretrainingDataset, PretrainingDataset]:
    folder = tmp_path_factory.mktemp("wiring")
    corpus = folder / "markov.txt"
    corpus.write_text(MarkovCorpus(alphabet_size=6, order=1, concentration=0.3, seed=3).text(
        20_000, rng=np.random.default_rng(0)))
    tokenizer = CharTokenizer()
    common = dict(tokenizer=tokenizer, seq_len=SEQ_LEN, objective="mlm", cache_dir=folder / "cache")
    return (PretrainingDataset(corpus, split="train", **common),
            PretrainingDataset(corpus, split="validation", **common))


def tiny_bert(vocab_size: int, dropout: float = 0.0, dtype: str = "float32") -> object:
    return create_model("bert", vocab_size, n_layer=1, n_head=2, n_embd=16, block_size=SEQ_LEN, dropout=dropout,
                        seed=0, dtype=dtype)


def mlm_trainer(data, dropout: float = 0.0, dtype: str = "float32", **options: object) -> PreTrainer:
    train, val = data
    model = tiny_bert(train.tokenizer.vocab_size, dropout, dtype)
    settings = dict(batch_size=4, learning_rate=1e-3, max_steps=10, warmup_steps=1, eval_interval=0,
                    eval_batches=2, progress=False, seed=7)
    settings.update(options)
    return PreTrainer(model=model, objective=MaskedLanguageModeling(model, train.tokenizer, mask_prob=0.3),
                      dataset=train, eval_dataset=val, **settings)


def gradients_at_the_update(trainer: PreTrainer) -> list[np.ndarray]:
    """Run one step and return the gradients the optimizer was given (after clipping)."""
    seen: list[np.ndarray] = []
    original = trainer.optimizer.step

    def capture() -> None:
        seen.extend(p.grad.copy() for p in trainer.model.parameters())
        original()

    trainer.optimizer.step = capture
    trainer.train_step()
    trainer.optimizer.step = original
    return seen


def test_the_step_weights_every_masked_token_equally(mlm_data) -> None:
    """k micro-batches must give the full batch's mean-loss gradient, whatever each masks (not a mean of means)."""
    trainer = mlm_trainer(mlm_data, dtype="float64", gradient_accumulation_steps=3, grad_clip=None)
    # The reference replays the trainer's own seeded streams: data order [seed, 0], masks [seed, 1].
    data_rng, mask_rng = np.random.default_rng([7, 0]), np.random.default_rng([7, 1])
    prepared = [trainer.objective.prepare(trainer.dataset.get_batch(4, data_rng), mask_rng) for _ in range(3)]
    assert len({p.num_targets for p in prepared}) > 1  # the case where a mean of means is wrong
    full = PreparedBatch(*(np.concatenate([getattr(p, f) for p in prepared]) for f in
                           ("input_ids", "attention_mask", "labels", "token_type_ids")))
    reference = tiny_bert(trainer.dataset.tokenizer.vocab_size, dtype="float64")
    loss, _ = trainer.objective.loss(reference, full, reduction="mean")
    loss.backward()
    for got, (name, expected) in zip(gradients_at_the_update(trainer), reference.named_parameters()):
        np.testing.assert_allclose(got, expected.grad, rtol=1e-10, atol=1e-14, err_msg=name)


def test_only_weight_matrices_are_decayed_with_the_configured_betas(mlm_data) -> None:
    trainer = mlm_trainer(mlm_data, weight_decay=0.25, betas=(0.8, 0.85), learning_rate=2e-3)
    embeddings = {id(p) for p in trainer.model.embedding_parameters()}
    decay_of = {id(p): group["weight_decay"] for group in trainer.optimizer.param_groups for p in group["params"]}
    names = dict(trainer.model.named_parameters())
    assert set(decay_of) == {id(p) for p in names.values()}
    for name, p in names.items():
        matrix = p.ndim == 2 and id(p) not in embeddings
        assert decay_of[id(p)] == (0.25 if matrix else 0.0), name
    assert any(p.ndim == 2 and id(p) not in embeddings for p in names.values())  # both groups are populated
    for group in trainer.optimizer.param_groups:
        assert group["betas"] == (0.8, 0.85) and group["lr"] == 2e-3


def test_the_update_sees_clipped_gradients(mlm_data) -> None:
    trainer = mlm_trainer(mlm_data, grad_clip=1e-3)
    grads = gradients_at_the_update(trainer)
    global_norm = float(np.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads)))
    assert trainer.history == [] and global_norm == pytest.approx(1e-3, rel=1e-5)
    unclipped = mlm_trainer(mlm_data, grad_clip=None)
    grads = gradients_at_the_update(unclipped)
    assert float(np.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads))) > 1e-2


def test_evaluation_runs_in_eval_mode_and_restores_train_mode(mlm_data) -> None:
    with_dropout = mlm_trainer(mlm_data, dropout=0.5)
    without = mlm_trainer(mlm_data, dropout=0.0)  # the same initial weights (seed 0): dropout is the only change
    with_dropout.model.train()
    assert with_dropout.evaluate()["val_loss"] == without.evaluate()["val_loss"]
    assert with_dropout.model.training


def test_an_mlm_run_resumes_bit_identically(mlm_data, tmp_path: Path) -> None:
    """Masks draw from the objective's generator: a resumed run must continue its stream, not restart it."""
    straight = mlm_trainer(mlm_data, dropout=0.1)
    straight.train()
    first = mlm_trainer(mlm_data, dropout=0.1, checkpoint_dir=tmp_path / "run")
    first.train(until_step=4)
    resumed = mlm_trainer(mlm_data, dropout=0.1, checkpoint_dir=tmp_path / "run")
    resumed.train(resume=True)
    assert [r["loss"] for r in first.history + resumed.history] == [r["loss"] for r in straight.history]
    for (name, a), (_, b) in zip(straight.model.named_parameters(), resumed.model.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)


def test_berts_feed_forward_is_the_exact_erf_gelu() -> None:
    """BERT's intermediate layer against NumPy: GELU(x) = x·Φ(x) = ½x(1 + erf(x/√2)), not the tanh form
    (which differs by up to ~5e-4 near |x| ≈ 2: far above float64 rounding)."""
    model = tiny_bert(20, dtype="float64")
    layer = model.bert.encoder.layer[0]
    x = np.random.default_rng(1).normal(0.0, 3.0, (2, 5, 16))
    hidden = x @ layer.intermediate.dense.weight.data.T + layer.intermediate.dense.bias.data
    expected = 0.5 * hidden * (1.0 + erf(hidden / np.sqrt(2.0)))
    np.testing.assert_allclose(layer.intermediate(mp.Tensor(x)).numpy(), expected, rtol=1e-13, atol=1e-15)

