"""The op table (minitorch's habit): every name ``minipretrain.ops`` exports has a gradient check here, so a
new op cannot land untested; plus the truth table of attention's causal and padding masks.

The table's cases are small and fixed (float64, values away from kinks and ties); the hypothesis-driven checks
over many shapes are in each family's test file. A name missing from ``GRADIENT_CASES`` fails
``test_every_exported_op_has_a_gradient_check``.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import check_gradients
from minipretrain import ops, tensor
from minipretrain.ops.attention import attention_mask, attention_reference

RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 3, 4))
POSITIVE = RNG.uniform(0.5, 2.0, size=(2, 3, 4))
DISTINCT = np.arange(24, dtype=np.float64).reshape(2, 3, 4) * 0.37 - 4.0  # no ties for max
MASK = RNG.random((2, 3, 4)) < 0.5
IDS = np.array([[0, 2, 2], [4, 1, 0]])
TARGETS = np.array([1, 3, -100, 0, 2, 4])

#: op name -> (function of Tensors, input arrays) for a finite-difference gradient check.
GRADIENT_CASES = {
    "add": (ops.add, [X, X[0, 0]]),
    "sub": (ops.sub, [X, X[0]]),
    "mul": (ops.mul, [X, X[:, :1]]),
    "div": (ops.div, [X, POSITIVE]),
    "neg": (ops.neg, [X]),
    "pow": (lambda t: ops.pow(t, 3), [X]),
    "exp": (ops.exp, [X]),
    "log": (ops.log, [POSITIVE]),
    "sqrt": (ops.sqrt, [POSITIVE]),
    "tanh": (ops.tanh, [X]),
    "relu": (ops.relu, [DISTINCT + 0.1]),
    "gelu": (lambda t: ops.gelu(t, approximate="tanh") + ops.gelu(t, approximate="none"), [X]),
    "matmul": (ops.matmul, [X, RNG.normal(size=(4, 5))]),
    "sum": (lambda t: ops.sum(t, axis=1), [X]),
    "mean": (lambda t: ops.mean(t, axis=(0, 2)), [X]),
    "var": (lambda t: ops.var(t, axis=-1), [X]),
    "max": (lambda t: ops.max(t, axis=-1), [DISTINCT]),
    "reshape": (lambda t: ops.reshape(t, (6, 4)), [X]),
    "permute": (lambda t: ops.permute(t, (2, 0, 1)), [X]),
    "transpose": (lambda t: ops.transpose(t, 0, 2), [X]),
    "getitem": (lambda t: ops.getitem(t, (slice(None), np.array([0, 2, 2]))), [X]),
    "concat": (lambda a, b: ops.concat([a, b], axis=1), [X, X[:, :2]]),
    "split": (lambda t: ops.split(t, [1, 3], axis=-1)[1], [X]),
    "where": (lambda a, b: ops.where(MASK, a, b), [X, POSITIVE]),
    "masked_fill": (lambda t: ops.masked_fill(t, MASK, 0.5), [X]),
    "softmax": (lambda t: ops.softmax(t, axis=1), [X]),
    "log_softmax": (lambda t: ops.log_softmax(t, axis=-1), [X]),
    "cross_entropy": (lambda z: ops.cross_entropy(z, TARGETS), [RNG.normal(size=(6, 5))]),
    "layer_norm": (ops.layer_norm, [X, RNG.normal(size=4), RNG.normal(size=4)]),
    "embedding": (lambda w: ops.embedding(w, IDS), [RNG.normal(size=(5, 3))]),
    "dropout": (lambda t: ops.dropout(t, 0.3, np.random.default_rng(7)), [X]),
    "scaled_dot_product_attention": (
        lambda q, k, v: ops.scaled_dot_product_attention(q, k, v, causal=True,
                                                         key_padding_mask=np.array([[1, 1, 1, 0]])),
        [RNG.normal(size=(1, 2, 4, 3)), RNG.normal(size=(1, 2, 4, 3)), RNG.normal(size=(1, 2, 4, 3))]),
    "rms_norm": (lambda x, w: ops.rms_norm(x, w, eps=1e-6), [X, RNG.normal(size=4)]),
    "biased_attention": (
        lambda q, k, v, b: ops.biased_attention(q, k, v, b, causal=True, key_padding_mask=np.array([[1, 1, 1, 0, 1]])),
        [RNG.normal(size=(1, 2, 3, 2)), RNG.normal(size=(1, 2, 5, 2)), RNG.normal(size=(1, 2, 5, 3)),
         RNG.normal(size=(1, 2, 3, 5))]),  # Tq = 3 < Tk = 5, a bias per head with a gradient
    "binary_cross_entropy_with_logits": (
        lambda z: ops.binary_cross_entropy_with_logits(z, (MASK > 0.5).astype(float), mask=~MASK[::-1]), [X]),
}
NOT_DIFFERENTIABLE = {"IGNORE_INDEX"}  # a constant, not an op


def test_every_exported_op_has_a_gradient_check() -> None:
    missing = sorted(set(ops.__all__) - NOT_DIFFERENTIABLE - set(GRADIENT_CASES))
    assert not missing, f"ops without a gradient check in GRADIENT_CASES: {missing}"
    assert set(GRADIENT_CASES) <= set(ops.__all__)


@pytest.mark.parametrize("name", sorted(GRADIENT_CASES))
def test_gradient_of(name: str) -> None:
    fn, arrays = GRADIENT_CASES[name]
    check_gradients(fn, *arrays)


# ----------------------------------------------------------------------------------------------- mask truth table
T, F = True, False


@pytest.mark.parametrize("tq, tk, causal, padding, expected", [
    (3, 3, True, None, [[T, F, F], [T, T, F], [T, T, T]]),
    (2, 4, True, None, [[T, T, T, F], [T, T, T, T]]),  # decoding with a cache: the queries are the last two
    (1, 3, True, None, [[T, T, T]]),
    (3, 3, False, [1, 1, 0], [[T, T, F], [T, T, F], [T, T, F]]),
    (3, 3, True, [1, 1, 0], [[T, F, F], [T, T, F], [T, T, F]]),
    (2, 3, False, [0, 1, 1], [[F, T, T], [F, T, T]]),
])
def test_causal_and_padding_masks_truth_table(tq, tk, causal, padding, expected) -> None:
    """Which key each query may see, written out; checked on the mask helper and on both attentions' weights."""
    padding_mask = None if padding is None else np.array([padding])
    allowed = attention_mask(np, tq, tk, causal, padding_mask)
    np.testing.assert_array_equal(np.broadcast_to(allowed, (1, 1, tq, tk))[0, 0], expected)
    # With v = I the output *is* the attention weights: zero exactly where a key is hidden, positive elsewhere.
    rng = np.random.default_rng(1)
    q, k = (rng.normal(size=(1, 1, n, 2)) for n in (tq, tk))
    v = np.eye(tk)[None, None]

    for weights in (ops.scaled_dot_product_attention(tensor(q), tensor(k), tensor(v), causal=causal,
                                                      key_padding_mask=padding_mask),
                    attention_reference(tensor(q), tensor(k), tensor(v), causal=causal,
                                        key_padding_mask=padding_mask)):
        probs = weights.numpy()[0, 0]
        np.testing.assert_array_equal(probs > 1e-12, expected)
        np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-12)
