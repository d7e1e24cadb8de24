"""Gradient accumulation: k micro-batches must give exactly the full batch's gradient.

The recipe (minipretrain.objectives.accumulate_gradients): prepare every micro-batch, N = Σ N_i targets,
backward L_sum,i / N each. Compared in float64 to 1e-10 relative: both sides add the same per-token
gradients, only grouped differently, so they differ by summation-order rounding (≈1e-16 per addition).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from minipretrain import ops
from minipretrain.nn.parameter import Parameter
from minipretrain.objectives import (
    CausalLanguageModeling, MaskedLanguageModeling, PreparedBatch, accumulate_gradients,
)

RTOL, ATOL = 1e-10, 1e-13


class StubTokenizer:
    vocab_size = 40
    pad_id, cls_id, sep_id, mask_id, eos_id = 0, 1, 2, 3, 39
    special_ids = frozenset({0, 1, 2, 3, 39})


class BigramModel:
    """logits = E[ids] @ W + c, in float64."""

    def __init__(self, vocab_size: int, kind: str, dim: int = 6, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.kind, self.device = kind, "cpu"
        self.embedding = Parameter(rng.normal(0.0, 1.0, (vocab_size, dim)), decay=False)
        self.weight = Parameter(rng.normal(0.0, dim**-0.5, (dim, vocab_size)))
        self.bias = Parameter(rng.normal(0.0, 0.1, vocab_size), decay=False)

    def parameters(self) -> list[Parameter]:
        return [self.embedding, self.weight, self.bias]

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None):
        return ops.embedding(self.embedding, input_ids) @ self.weight + self.bias


@dataclass
class Batch:
    input_ids: np.ndarray
    attention_mask: np.ndarray
    special_tokens_mask: np.ndarray


def mlm_micro_batch(rows: int, length: int, real_length: int, seed: int) -> Batch:
    """``[CLS] x … [SEP] [PAD] …`` with ``real_length`` real tokens per row (including [CLS] and [SEP])."""
    rng = np.random.default_rng(seed)
    tok = StubTokenizer
    ids = rng.integers(4, tok.vocab_size - 1, size=(rows, length))
    positions = np.arange(length)[None, :].repeat(rows, 0)
    ids[:, 0] = tok.cls_id
    ids[:, real_length - 1] = tok.sep_id
    ids[positions >= real_length] = tok.pad_id
    attention = positions < real_length
    special = ~attention | (positions == 0) | (positions == real_length - 1)
    return Batch(ids, attention, special)


def concatenate(prepared: list[PreparedBatch]) -> PreparedBatch:
    def cat(name):
        parts = [getattr(p, name) for p in prepared]
        return None if parts[0] is None else np.concatenate(parts)
    return PreparedBatch(cat("input_ids"), cat("attention_mask"), cat("labels"), cat("token_type_ids"))


def gradients(model) -> list[np.ndarray]:
    return [p.grad.copy() for p in model.parameters()]


def zero_grad(model) -> None:
    for p in model.parameters():
        p.grad = None


def full_batch_gradients(objective, model, micro_batches, seed):
    """The reference: one big batch made of the same (identically masked) micro-batches, mean loss."""
    rng = np.random.default_rng(seed)
    full = concatenate([objective.prepare(b, rng) for b in micro_batches])
    zero_grad(model)
    loss, metrics = objective.loss(model, full, reduction="mean")
    loss.backward()
    return gradients(model), metrics


def assert_same_gradients(actual, expected):
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, rtol=RTOL, atol=ATOL)


def test_clm_accumulation_equals_the_full_batch():
    model = BigramModel(StubTokenizer.vocab_size, "gpt")
    objective = CausalLanguageModeling(model)
    rng = np.random.default_rng(0)
    windows = rng.integers(4, 39, size=(8, 9))
    micro_batches = [Batch(w, np.ones(w.shape, bool), np.zeros(w.shape, bool)) for w in np.split(windows, 4)]

    expected, full_metrics = full_batch_gradients(objective, model, micro_batches, seed=0)
    zero_grad(model)
    metrics = accumulate_gradients(objective, model, micro_batches, np.random.default_rng(0))
    assert_same_gradients(gradients(model), expected)
    assert metrics["num_targets"] == 8 * 8
    assert metrics["loss"] == pytest.approx(full_metrics["loss"], rel=RTOL)
    assert metrics["accuracy"] == pytest.approx(full_metrics["accuracy"], rel=RTOL)


def test_mlm_accumulation_weights_tokens_not_micro_batches():
    model = BigramModel(StubTokenizer.vocab_size, "bert")
    objective = MaskedLanguageModeling(model, StubTokenizer(), mask_prob=0.3)
    # Same length, very different amounts of padding, and one micro-batch with no maskable token at all.
    micro_batches = [mlm_micro_batch(3, 24, real, seed) for seed, real in enumerate((24, 6, 15, 2))]
    counts = [objective.prepare(b, np.random.default_rng(1)).num_targets for b in micro_batches]
    assert counts[3] == 0 and len(set(counts[:3])) == 3

    expected, full_metrics = full_batch_gradients(objective, model, micro_batches, seed=5)
    zero_grad(model)
    metrics = accumulate_gradients(objective, model, micro_batches, np.random.default_rng(5))
    assert_same_gradients(gradients(model), expected)
    assert metrics["num_targets"] == full_metrics["num_targets"]
    assert metrics["loss"] == pytest.approx(full_metrics["loss"], rel=RTOL)
    assert metrics["accuracy"] == pytest.approx(full_metrics["accuracy"], rel=RTOL)

    # The tempting average of per-micro-batch means gives a different gradient when counts differ.
    zero_grad(model)
    rng = np.random.default_rng(5)
    prepared = [objective.prepare(b, rng) for b in micro_batches]
    with_targets = [p for p in prepared if p.num_targets]
    for p in with_targets:
        loss, _ = objective.loss(model, p, reduction="mean")
        (loss * (1.0 / len(with_targets))).backward()
    naive = gradients(model)
    assert not all(np.allclose(n, e, rtol=1e-3, atol=0) for n, e in zip(naive, expected))


def test_accumulation_without_any_target_runs_no_backward():
    model = BigramModel(StubTokenizer.vocab_size, "bert")
    objective = MaskedLanguageModeling(model, StubTokenizer())
    metrics = accumulate_gradients(objective, model, [mlm_micro_batch(2, 8, 2, 0)], np.random.default_rng(0))
    assert metrics == {"loss": 0.0, "accuracy": 0.0, "num_targets": 0.0}
    assert all(p.grad is None for p in model.parameters())
