"""Causal and masked language-modelling objectives: shifting, padding, BERT's 80/10/10 recipe, statistics.

The models and tokenizers here are tiny stand-ins (a bigram model made of minipretrain ops, a stub
tokenizer), so these tests do not depend on minipretrain.models or minipretrain.tokenizers.

Statistical checks use ≥ 1M tokens and a tolerance of 4 binomial standard errors, √(n·p·(1−p)), around the
expected count; with fixed seeds they are deterministic, and a correct implementation would fail one
such check with probability ≈ 6e-5 over the choice of seed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from scipy import stats

from minipretrain import ops
from minipretrain.backend import cupy_available
from minipretrain.nn.parameter import Parameter
from minipretrain.objectives import (
    IGNORE_INDEX, CausalLanguageModeling, MaskedLanguageModeling, PreparedBatch, make_objective,
)

NUM_SIGMA = 4.0
#: the chance that a standard normal lands beyond ±4σ: the false-alarm rate matching NUM_SIGMA.
FALSE_ALARM = 2 * stats.norm.sf(NUM_SIGMA)


# --------------------------------------------------------------------------- stand-ins
class StubTokenizer:
    """The tokenizer interface the objectives use, with special ids scattered through the vocabulary."""

    def __init__(self, vocab_size: int = 1000) -> None:
        self.vocab_size = vocab_size
        first = vocab_size // 10 + 1  # [CLS], [SEP], [MASK] sit inside the vocabulary, not at an end
        self.pad_id, self.eos_id = 0, vocab_size - 1
        self.cls_id, self.sep_id, self.mask_id = first, first + 1, first + 2
        self.special_ids = frozenset({self.pad_id, self.cls_id, self.sep_id, self.mask_id, self.eos_id})


class BigramModel:
    """logits[b, t] = E[ids[b, t]] @ W + c — the smallest "language model" made of minipretrain ops."""

    def __init__(self, vocab_size: int, kind: str = "gpt", dim: int = 8, seed: int = 0,
                 dtype: type = np.float64) -> None:
        rng = np.random.default_rng(seed)
        self.kind = kind
        self.device = "cpu"
        self.embedding = Parameter(rng.normal(0.0, 1.0, (vocab_size, dim)).astype(dtype), decay=False)
        self.weight = Parameter(rng.normal(0.0, dim**-0.5, (dim, vocab_size)).astype(dtype))
        self.bias = Parameter(rng.normal(0.0, 0.1, vocab_size).astype(dtype), decay=False)
        self.last_call: dict = {}

    def parameters(self) -> list[Parameter]:
        return [self.embedding, self.weight, self.bias]

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None):
        self.last_call = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        return ops.embedding(self.embedding, input_ids) @ self.weight + self.bias


class TableModel:
    """logits[b, t] = T[ids[b, t]]: a fixed table, so a loss can be computed by hand."""

    def __init__(self, table: np.ndarray, kind: str = "gpt") -> None:
        self.kind = kind
        self.device = "cpu"
        self.table = Parameter(np.asarray(table, dtype=np.float64), decay=False)

    def parameters(self) -> list[Parameter]:
        return [self.table]

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None):
        return ops.embedding(self.table, input_ids)


@dataclass
class Batch:
    input_ids: np.ndarray
    attention_mask: np.ndarray
    special_tokens_mask: np.ndarray


def clm_batch(rows: list[list[int]], pad_id: int = 0) -> Batch:
    """Right-padded CLM windows; a trailing run of ``pad_id`` is padding."""
    length = max(map(len, rows))
    ids = np.full((len(rows), length), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), length), dtype=bool)
    for r, row in enumerate(rows):
        ids[r, : len(row)] = row
        mask[r, : len(row)] = True
    return Batch(ids, mask, np.zeros_like(mask))


def mlm_batch(tokenizer: StubTokenizer, rows: int, length: int, seed: int, min_length: int | None = None,
              eos_rate: float = 0.01, fixed_token: int | None = None) -> Batch:
    """``[CLS] tokens [SEP] [PAD]…`` rows of random length, with some end-of-text ids inside the text that the
    batch's special_tokens_mask does *not* mark (they must be protected by id anyway)."""
    rng = np.random.default_rng(seed)
    ordinary = np.setdiff1d(np.arange(tokenizer.vocab_size), sorted(tokenizer.special_ids))
    lengths = rng.integers(min_length or length // 2, length + 1, size=rows)
    positions = np.arange(length)[None, :]
    attention = positions < lengths[:, None]
    ids = np.full((rows, length), fixed_token) if fixed_token is not None else rng.choice(ordinary, (rows, length))
    ids[rng.random((rows, length)) < eos_rate] = tokenizer.eos_id
    ids[:, 0] = tokenizer.cls_id
    ids[np.arange(rows), lengths - 1] = tokenizer.sep_id
    ids[~attention] = tokenizer.pad_id
    special = ~attention | (positions == 0) | (positions == lengths[:, None] - 1)
    return Batch(ids.astype(np.int64), attention, special)


def assert_binomial(count: int, trials: int, probability: float, what: str) -> None:
    """``count`` is within NUM_SIGMA binomial standard errors of trials·probability."""
    expected = trials * probability
    sigma = math.sqrt(trials * probability * (1.0 - probability))
    assert abs(count - expected) <= NUM_SIGMA * sigma, (
        f"{what}: {count} of {trials}, expected {expected:.1f} ± {NUM_SIGMA}·{sigma:.1f}"
    )


# --------------------------------------------------------------------------- interface and errors
def test_objectives_know_their_name_and_model_kind():
    tokenizer = StubTokenizer()
    clm = CausalLanguageModeling(BigramModel(10, "gpt"))
    mlm = MaskedLanguageModeling(BigramModel(tokenizer.vocab_size, "bert"), tokenizer)
    assert (clm.name, clm.model_kind) == ("clm", "gpt")
    assert (mlm.name, mlm.model_kind) == ("mlm", "bert")
    assert isinstance(make_objective("mlm", BigramModel(tokenizer.vocab_size, "bert"), tokenizer, mask_prob=0.2),
                      MaskedLanguageModeling)
    with pytest.raises(ValueError, match="unknown objective"):
        make_objective("t5", BigramModel(10), tokenizer)


@pytest.mark.parametrize("build", [
    lambda: CausalLanguageModeling(BigramModel(10, "bert")),
    lambda: MaskedLanguageModeling(BigramModel(1000, "gpt"), StubTokenizer()),
])
def test_wrong_model_kind_is_a_clear_error(build):
    with pytest.raises(ValueError, match="trains a '(gpt|bert)' model.*of kind '(bert|gpt)'"):
        build()


def test_loss_rejects_a_model_of_the_wrong_kind_and_unknown_reductions():
    objective = CausalLanguageModeling(BigramModel(10, "gpt"))
    prepared = objective.prepare(clm_batch([[1, 2, 3]]))
    with pytest.raises(ValueError, match="kind 'bert'"):
        objective.loss(BigramModel(10, "bert"), prepared)
    with pytest.raises(ValueError, match="reduction"):
        objective.loss(BigramModel(10, "gpt"), prepared, reduction="none")


@pytest.mark.parametrize("settings", [
    {"mask_prob": -0.1}, {"mask_prob": 1.5}, {"mask_token_prob": 1.2}, {"random_token_prob": -0.01},
    {"mask_token_prob": 0.8, "random_token_prob": 0.3}, {"mask_prob": float("nan")},
])
def test_mlm_refuses_impossible_probabilities(settings):
    tokenizer = StubTokenizer()
    with pytest.raises(ValueError, match="mask_prob|mask_token_prob|random_token_prob"):
        MaskedLanguageModeling(BigramModel(tokenizer.vocab_size, "bert"), tokenizer, **settings)


# --------------------------------------------------------------------------- causal LM
def test_clm_shifts_inputs_and_labels_by_one():
    objective = CausalLanguageModeling(BigramModel(10))
    batch = clm_batch([[1, 2, 3, 4, 5], [6, 7, 8, 9, 1]])
    prepared = objective.prepare(batch)
    np.testing.assert_array_equal(prepared.input_ids, [[1, 2, 3, 4], [6, 7, 8, 9]])
    np.testing.assert_array_equal(prepared.labels, [[2, 3, 4, 5], [7, 8, 9, 1]])
    assert prepared.attention_mask.all() and prepared.num_targets == 8
    assert prepared.token_type_ids is None
    assert prepared.input_ids.dtype == np.int64 and prepared.labels.dtype == np.int64


def test_clm_never_predicts_padding():
    objective = CausalLanguageModeling(BigramModel(10))
    prepared = objective.prepare(clm_batch([[1, 2, 3, 4, 5], [6, 7, 8]]))
    np.testing.assert_array_equal(prepared.input_ids[1], [6, 7, 8, 0])
    np.testing.assert_array_equal(prepared.attention_mask[1], [True, True, True, False])
    # The pairs 6→7 and 7→8 are real; 8→pad and pad→pad are not.
    np.testing.assert_array_equal(prepared.labels[1], [7, 8, IGNORE_INDEX, IGNORE_INDEX])
    assert prepared.num_targets == 4 + 2


def test_clm_loss_equals_a_hand_computed_cross_entropy():
    table = np.array([[1.0, 2.0, 0.0],
                      [0.0, 0.0, 3.0],
                      [2.0, 1.0, 1.0]])
    model = TableModel(table)
    objective = CausalLanguageModeling(model)
    # Window [0, 1, 2, 1] gives the pairs 0→1, 1→2, 2→1; window [2, 0, pad, pad] only 2→0.
    batch = Batch(np.array([[0, 1, 2, 1], [2, 0, 0, 0]]), np.array([[1, 1, 1, 1], [1, 1, 0, 0]], bool),
                  np.zeros((2, 4), bool))
    pair_losses = [
        -math.log(math.exp(2) / (math.exp(1) + math.exp(2) + math.exp(0))),  # 0 → 1
        -math.log(math.exp(3) / (math.exp(0) + math.exp(0) + math.exp(3))),  # 1 → 2
        -math.log(math.exp(1) / (math.exp(2) + math.exp(1) + math.exp(1))),  # 2 → 1
        -math.log(math.exp(2) / (math.exp(2) + math.exp(1) + math.exp(1))),  # 2 → 0
    ]
    loss, metrics = objective(model, batch)
    assert loss.item() == pytest.approx(sum(pair_losses) / 4, rel=1e-12)
    assert metrics["loss"] == pytest.approx(sum(pair_losses) / 4, rel=1e-12)
    # arg-max predictions: 0→1 right, 1→2 right, 2→0 wrong (target 1), 2→0 right.
    assert metrics["accuracy"] == pytest.approx(3 / 4)
    assert metrics["num_targets"] == 4

    summed, summed_metrics = objective.loss(model, objective.prepare(batch), reduction="sum")
    assert summed.item() == pytest.approx(sum(pair_losses), rel=1e-12)
    assert summed_metrics["loss"] == pytest.approx(metrics["loss"], rel=1e-12)


def test_clm_loss_backpropagates_to_the_model():
    model = BigramModel(12)
    objective = CausalLanguageModeling(model)
    batch = clm_batch([[1, 2, 3, 4, 5, 6], [7, 8, 9]])
    loss, _ = objective(model, batch)
    loss.backward()
    assert all(p.grad is not None and np.isfinite(p.grad).all() for p in model.parameters())
    # An embedding row gets a gradient only from positions with a target: 6 ends a window, 9 is followed by
    # padding, 0 is padding — their rows stay exactly zero.
    assert not model.embedding.grad[[0, 6, 9]].any()
    assert model.embedding.grad[[1, 2, 3, 4, 5, 7, 8]].any(axis=1).all()
    np.testing.assert_array_equal(model.last_call["attention_mask"], objective.prepare(batch).attention_mask)


# --------------------------------------------------------------------------- masked LM: exact properties
def test_mlm_labels_and_untouched_positions():
    tokenizer = StubTokenizer()
    objective = MaskedLanguageModeling(BigramModel(tokenizer.vocab_size, "bert"), tokenizer)
    batch = mlm_batch(tokenizer, rows=64, length=40, seed=1)
    before = batch.input_ids.copy()
    prepared = objective.prepare(batch, np.random.default_rng(0))
    np.testing.assert_array_equal(batch.input_ids, before)  # the batch itself is not modified
    selected = prepared.labels != IGNORE_INDEX
    np.testing.assert_array_equal(prepared.labels[selected], batch.input_ids[selected])
    np.testing.assert_array_equal(prepared.input_ids[~selected], batch.input_ids[~selected])
    np.testing.assert_array_equal(prepared.attention_mask, batch.attention_mask)
    np.testing.assert_array_equal(prepared.token_type_ids, np.zeros_like(batch.input_ids))
    assert prepared.num_targets == int(selected.sum()) > 0


def test_mlm_extreme_probabilities():
    tokenizer = StubTokenizer()
    model = BigramModel(tokenizer.vocab_size, "bert")
    batch = mlm_batch(tokenizer, rows=32, length=30, seed=2)
    candidates = batch.attention_mask & ~batch.special_tokens_mask & (batch.input_ids != tokenizer.eos_id)

    with pytest.raises(ValueError, match="mask_prob"):  # masking nothing would train nothing: refused
        MaskedLanguageModeling(model, tokenizer, mask_prob=0.0)

    everything = MaskedLanguageModeling(model, tokenizer, mask_prob=1.0, mask_token_prob=1.0,
                                        random_token_prob=0.0).prepare(batch)
    np.testing.assert_array_equal(everything.labels != IGNORE_INDEX, candidates)
    assert (everything.input_ids[candidates] == tokenizer.mask_id).all()

    kept = MaskedLanguageModeling(model, tokenizer, mask_prob=1.0, mask_token_prob=0.0,
                                  random_token_prob=0.0).prepare(batch)
    np.testing.assert_array_equal(kept.input_ids, batch.input_ids)
    assert kept.num_targets == int(candidates.sum())


def test_mlm_is_deterministic_under_a_seed_and_dynamic_across_batches():
    tokenizer = StubTokenizer()
    model = BigramModel(tokenizer.vocab_size, "bert")
    objective = MaskedLanguageModeling(model, tokenizer)
    batch = mlm_batch(tokenizer, rows=16, length=64, seed=3)

    first = objective.prepare(batch, np.random.default_rng(42))
    again = objective.prepare(batch, np.random.default_rng(42))
    np.testing.assert_array_equal(first.input_ids, again.input_ids)
    np.testing.assert_array_equal(first.labels, again.labels)

    rng = np.random.default_rng(42)
    epoch1, epoch2 = objective.prepare(batch, rng), objective.prepare(batch, rng)
    assert not np.array_equal(epoch1.labels, epoch2.labels)  # the same text gets a fresh mask (RoBERTa)

    # Without an rng, the objective's own generator (seeded by `seed`) is used.
    a = MaskedLanguageModeling(model, tokenizer, seed=7)
    b = MaskedLanguageModeling(model, tokenizer, seed=7)
    a1, b1, a2 = a.prepare(batch), b.prepare(batch), a.prepare(batch)
    np.testing.assert_array_equal(a1.labels, b1.labels)
    np.testing.assert_array_equal(a1.input_ids, b1.input_ids)
    assert not np.array_equal(a1.labels, a2.labels)


def test_mlm_loss_feeds_token_type_ids_and_scores_only_masked_positions():
    tokenizer = StubTokenizer(vocab_size=50)
    model = BigramModel(tokenizer.vocab_size, "bert")
    objective = MaskedLanguageModeling(model, tokenizer, mask_prob=0.3)
    batch = mlm_batch(tokenizer, rows=8, length=20, seed=4)
    prepared = objective.prepare(batch, np.random.default_rng(0))
    loss, metrics = objective.loss(model, prepared)
    np.testing.assert_array_equal(model.last_call["token_type_ids"], prepared.token_type_ids)

    logits = model(prepared.input_ids).numpy()
    selected = prepared.labels != IGNORE_INDEX
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -log_probs[selected, prepared.labels[selected]].mean()
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    accuracy = (logits.argmax(-1)[selected] == prepared.labels[selected]).mean()
    assert metrics == pytest.approx({"loss": expected, "accuracy": accuracy, "num_targets": selected.sum()})


# --------------------------------------------------------------------------- masked LM: statistics over 1M tokens
@pytest.fixture(scope="module")
def big_batch():
    tokenizer = StubTokenizer()
    batch = mlm_batch(tokenizer, rows=2200, length=600, seed=11, min_length=450)
    return tokenizer, batch


@pytest.mark.parametrize("mask_prob, mask_token_prob, random_token_prob", [(0.15, 0.8, 0.1), (0.4, 0.5, 0.3)])
def test_mlm_selection_rate_and_replacement_split(big_batch, mask_prob, mask_token_prob, random_token_prob):
    tokenizer, batch = big_batch
    objective = MaskedLanguageModeling(BigramModel(tokenizer.vocab_size, "bert"), tokenizer, mask_prob=mask_prob,
                                       mask_token_prob=mask_token_prob, random_token_prob=random_token_prob)
    prepared = objective.prepare(batch, np.random.default_rng(2024))
    original, inputs = batch.input_ids, prepared.input_ids
    candidates = batch.attention_mask & ~batch.special_tokens_mask & ~np.isin(original, sorted(tokenizer.special_ids))
    num_candidates = int(candidates.sum())
    assert num_candidates >= 1_000_000

    selected = prepared.labels != IGNORE_INDEX
    assert not (selected & ~candidates).any(), "a special or padding token was selected"
    assert_binomial(int(selected.sum()), num_candidates, mask_prob, "selected")

    num_selected = int(selected.sum())
    became_mask = selected & (inputs == tokenizer.mask_id)
    became_other = selected & (inputs != tokenizer.mask_id) & (inputs != original)
    unchanged = selected & (inputs == original)
    # A random replacement draws the original token itself with probability 1/K (K non-special ids); those
    # look unchanged. So, given the selection: [MASK] ~ Bin(n, q_mask), visibly random ~ Bin(n, q_rand·(K−1)/K).
    k = tokenizer.vocab_size - len(tokenizer.special_ids)
    assert_binomial(int(became_mask.sum()), num_selected, mask_token_prob, "[MASK]")
    assert_binomial(int(became_other.sum()), num_selected, random_token_prob * (k - 1) / k, "random token")
    assert_binomial(int(unchanged.sum()), num_selected, 1 - mask_token_prob - random_token_prob * (k - 1) / k,
                    "unchanged")
    # Nowhere does a special id appear where the text had none, except [MASK] at masked positions.
    introduced = np.isin(inputs, sorted(tokenizer.special_ids)) & (inputs != original)
    np.testing.assert_array_equal(introduced, became_mask)


def test_mlm_random_replacements_are_uniform_over_non_special_ids():
    tokenizer = StubTokenizer()
    fixed = 500
    # Every text token is `fixed`, and every token is replaced at random: ≈1M independent draws.
    batch = mlm_batch(tokenizer, rows=1700, length=600, seed=12, min_length=600, eos_rate=0.0, fixed_token=fixed)
    objective = MaskedLanguageModeling(BigramModel(tokenizer.vocab_size, "bert"), tokenizer, mask_prob=1.0,
                                       mask_token_prob=0.0, random_token_prob=1.0)
    prepared = objective.prepare(batch, np.random.default_rng(99))
    selected = prepared.labels != IGNORE_INDEX
    draws = prepared.input_ids[selected]
    assert draws.size >= 1_000_000
    counts = np.bincount(draws, minlength=tokenizer.vocab_size)
    specials = sorted(tokenizer.special_ids)
    assert counts[specials].sum() == 0, "a special token was drawn as a replacement"

    ordinary = np.setdiff1d(np.arange(tokenizer.vocab_size), specials)
    k = ordinary.size
    # The draw that equals `fixed` is indistinguishable from keeping it, but here every token was replaced,
    # so all K counts are draws: a multinomial with K equal cells (≈1000 expected each).
    assert_binomial(int(counts[fixed]), draws.size, 1 / k, "draws of the original id")
    chi2 = stats.chisquare(counts[ordinary])
    assert chi2.pvalue > FALSE_ALARM, f"replacement ids are not uniform: chi² = {chi2.statistic:.0f} on {k - 1} dof"


def test_prepared_batch_counts_targets():
    prepared = PreparedBatch(np.zeros((2, 3), np.int64), np.ones((2, 3), bool),
                             np.array([[-100, 4, -100], [1, 2, -100]]))
    assert prepared.num_targets == 3


@pytest.mark.gpu
@pytest.mark.skipif(not cupy_available(), reason="needs CuPy and a CUDA GPU")
def test_loss_on_the_models_gpu_equals_the_host_loss():  # pragma: no cover - needs a GPU
    import cupy

    tokenizer = StubTokenizer(vocab_size=50)
    host, device = BigramModel(50, "bert"), BigramModel(50, "bert")
    for p in device.parameters():
        p.data = cupy.asarray(p.data)
    device.device = "cuda"
    objective = MaskedLanguageModeling(host, tokenizer, mask_prob=0.3)
    prepared = objective.prepare(mlm_batch(tokenizer, rows=8, length=20, seed=4), np.random.default_rng(0))
    (host_loss, host_metrics), (gpu_loss, gpu_metrics) = (objective.loss(m, prepared) for m in (host, device))
    # Ids reach the model on the host: its embedding checks their range there (free) and moves them; the
    # attention mask, which has nothing to check, is moved by the objective.
    assert isinstance(device.last_call["input_ids"], np.ndarray)
    assert isinstance(device.last_call["attention_mask"], cupy.ndarray)
    assert gpu_loss.item() == pytest.approx(host_loss.item(), rel=1e-12)
    assert gpu_metrics == pytest.approx(host_metrics, rel=1e-12)
