"""Embedding lookup (ops/embedding.py): gradients with repeated ids through both backward paths, range checks."""
from __future__ import annotations

import importlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis.extra import numpy as hnp
from hypothesis import strategies as st

from conftest import check_gradients, leaf, on_device
from minipretrain import ops
from strategies import arrays, shapes

embedding_module = importlib.import_module("minipretrain.ops.embedding")  # ops.embedding is the function

PATHS = ["one-hot product", "scatter-add"]


def backward_path(path: str) -> pytest.MonkeyPatch:
    """Both ways the backward adds rows: the one-hot product (small vocabularies) and the scatter-add."""
    patch = pytest.MonkeyPatch()
    if path == "scatter-add":
        patch.setattr(embedding_module, "ONE_HOT_MAX_VOCAB", 0)
    return patch


@pytest.mark.parametrize("path", PATHS)
@given(data=st.data())
def test_embedding_gradient_with_repeated_ids(device, path, data):
    vocab, dim = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 4))
    ids = data.draw(hnp.arrays(np.int64, data.draw(shapes(max_dims=2)), elements=st.integers(0, vocab - 1)))
    ids = on_device(np.append(ids, ids.flat[0]) if ids.ndim == 1 else ids, device)  # ensure repeats in 1-D
    patch = backward_path(path)
    try:
        check_gradients(lambda w: ops.embedding(w, ids), data.draw(arrays((vocab, dim))), device=device)
    finally:
        patch.undo()


@pytest.mark.parametrize("path", PATHS)
def test_embedding_sums_gradients_of_repeated_ids(path):
    weight = leaf(np.zeros((3, 2)))
    patch = backward_path(path)
    try:
        ops.embedding(weight, np.array([[2, 0], [2, 2]])).sum().backward()
    finally:
        patch.undo()
    assert weight.grad.tolist() == [[1.0, 1.0], [0.0, 0.0], [3.0, 3.0]]


def test_embedding_rejects_out_of_range_and_float_ids():
    weight = leaf(np.zeros((3, 2)))
    with pytest.raises(IndexError, match=r"\[0, 3\)"):
        ops.embedding(weight, np.array([0, 3]))
    with pytest.raises(TypeError, match="integers"):
        ops.embedding(weight, np.array([0.0]))


def test_embedding_backward_paths_agree_above_and_below_the_one_hot_threshold(monkeypatch):
    rng = np.random.default_rng(0)
    for vocab in (embedding_module.ONE_HOT_MAX_VOCAB, embedding_module.ONE_HOT_MAX_VOCAB + 1):
        ids, upstream = rng.integers(0, vocab, (6, 50)), rng.standard_normal((6, 50, 3))
        grads = []
        for threshold in (vocab, vocab - 1):  # one-hot product, then scatter-add
            monkeypatch.setattr(embedding_module, "ONE_HOT_MAX_VOCAB", threshold)
            weight = leaf(rng.standard_normal((vocab, 3)))
            ops.embedding(weight, ids).backward(upstream)
            grads.append(weight.grad)
        np.testing.assert_allclose(grads[0], grads[1], rtol=1e-13, atol=1e-13)  # sums of ≤ 300 terms, reordered
