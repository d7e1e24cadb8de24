"""Embedding lookup (ops/embedding.py): gradients with repeated ids, range checks."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis.extra import numpy as hnp
from hypothesis import strategies as st

from conftest import check_gradients, leaf, on_device
from minipretrain import ops
from strategies import arrays, shapes


@given(data=st.data())
def test_embedding_gradient_with_repeated_ids(device, data):
    vocab, dim = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 4))
    ids = data.draw(hnp.arrays(np.int64, data.draw(shapes(max_dims=2)), elements=st.integers(0, vocab - 1)))
    ids = on_device(np.append(ids, ids.flat[0]) if ids.ndim == 1 else ids, device)  # ensure repeats in 1-D
    check_gradients(lambda w: ops.embedding(w, ids), data.draw(arrays((vocab, dim))), device=device)


def test_embedding_sums_gradients_of_repeated_ids():
    weight = leaf(np.zeros((3, 2)))
    ops.embedding(weight, np.array([[2, 0], [2, 2]])).sum().backward()
    assert weight.grad.tolist() == [[1.0, 1.0], [0.0, 0.0], [3.0, 3.0]]


def test_embedding_rejects_out_of_range_and_float_ids():
    weight = leaf(np.zeros((3, 2)))
    with pytest.raises(IndexError, match=r"\[0, 3\)"):
        ops.embedding(weight, np.array([0, 3]))
    with pytest.raises(TypeError, match="integers"):
        ops.embedding(weight, np.array([0.0]))
