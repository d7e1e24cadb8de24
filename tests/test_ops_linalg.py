"""Matrix products (ops/linalg.py)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import assert_close, check_gradients, leaf
from minipretrain import ops
from strategies import arrays, broadcastable_shapes


@st.composite
def matmul_shapes(draw):
    """(A, B) shapes for a batched matmul: (..., n, k) @ (..., k, m) with broadcastable leading axes."""
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    lead_a, lead_b = draw(broadcastable_shapes(max_dims=2, max_side=3))
    return lead_a + (n, k), lead_b + (k, m)


@given(data=st.data())
def test_matmul_gradients_batched_and_broadcasting(device, data):
    a_shape, b_shape = data.draw(matmul_shapes())
    check_gradients(ops.matmul, data.draw(arrays(a_shape)), data.draw(arrays(b_shape)), device=device)


def test_matmul_forward_matches_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 1, 3, 4)), rng.standard_normal((5, 4, 2))
    assert_close(ops.matmul(leaf(a), leaf(b)), a @ b, rtol=1e-14)


def test_matmul_gradient_only_for_the_input_that_needs_it():
    a, b = leaf(np.ones((2, 3))), leaf(np.ones((3, 4)), requires_grad=False)
    ops.matmul(a, b).sum().backward()
    assert b.grad is None
    assert_close(a.grad, np.full((2, 3), 4.0))


@pytest.mark.parametrize("a_shape, b_shape", [((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (4, 2)), ((3, 4), (2, 4, 5))],
                         ids=["activations@weight", "4d@weight", "matrix@batch"])
def test_matmul_gradients_for_the_weight_matrix_shapes_of_a_transformer(device, a_shape, b_shape):
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    check_gradients(ops.matmul, a, b, device=device)
    assert_close(ops.matmul(leaf(a, device), leaf(b, device)), a @ b, rtol=1e-13)
    frozen = leaf(b, device, requires_grad=False)  # only the activations need a gradient
    check_gradients(lambda t: ops.matmul(t, frozen), a, device=device)
