"""Gradient checks of the element-wise ops, the activations and matmul (float64, gradcheck's default tolerances).

Every test draws shapes and values with hypothesis and runs on each ``device`` (cuda skips without a GPU).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import assert_close, check_gradients, leaf
from minipretrain import ops
from strategies import arrays, broadcastable_shapes, positive_arrays, shapes, spaced_arrays

BINARY = {"add": ops.add, "sub": ops.sub, "mul": ops.mul}


@pytest.mark.parametrize("name", sorted(BINARY))
@given(data=st.data())
def test_binary_op_gradients_with_broadcasting(device, name, data):
    a_shape, b_shape = data.draw(broadcastable_shapes())
    a, b = data.draw(arrays(a_shape)), data.draw(arrays(b_shape))
    check_gradients(BINARY[name], a, b, device=device)


@given(data=st.data())
def test_div_gradients_with_broadcasting(device, data):
    a_shape, b_shape = data.draw(broadcastable_shapes())
    a = data.draw(arrays(a_shape))
    b = data.draw(arrays(b_shape, -2.0, 2.0, away_from_zero=0.5))  # |b| >= 0.5: 1/b stays smooth within ±ε
    check_gradients(ops.div, a, b, device=device)


@given(data=st.data())
def test_div_by_a_constant_only_differentiates_the_numerator(device, data):
    shape = data.draw(shapes())
    a = data.draw(arrays(shape))
    constant = leaf(data.draw(arrays(shape, away_from_zero=0.5)), device, requires_grad=False)
    check_gradients(lambda x: ops.div(x, constant), a, device=device)
    check_gradients(lambda x: ops.div(constant, x), data.draw(arrays(shape, away_from_zero=0.5)), device=device)


@given(data=st.data())
def test_neg_gradient(device, data):
    check_gradients(ops.neg, data.draw(arrays(data.draw(shapes()))), device=device)


@pytest.mark.parametrize("exponent", [2, 3, -1, 0.5, 1.5, -2.5])
@given(data=st.data())
def test_pow_gradient_for_constant_exponents(device, exponent, data):
    x = data.draw(positive_arrays(data.draw(shapes()), 0.2, 2.0))  # x > 0 so that x^0.5, x^-1 are smooth
    check_gradients(lambda t: ops.pow(t, exponent), x, device=device)


def test_pow_rejects_a_tensor_exponent():
    with pytest.raises(TypeError, match="constant Python number"):
        ops.pow(leaf([1.0, 2.0]), leaf([2.0]))


@pytest.mark.parametrize("name", ["exp", "tanh"])
@given(data=st.data())
def test_smooth_unary_op_gradients(device, name, data):
    x = data.draw(arrays(data.draw(shapes()), -3.0, 3.0))
    check_gradients(getattr(ops, name), x, device=device)


@pytest.mark.parametrize("name", ["log", "sqrt"])
@given(data=st.data())
def test_log_and_sqrt_gradients_away_from_zero(device, name, data):
    x = data.draw(positive_arrays(data.draw(shapes()), 0.1, 5.0))  # derivative 1/x or 1/(2√x) is bounded
    check_gradients(getattr(ops, name), x, device=device)


@given(data=st.data())
def test_relu_gradient_away_from_the_kink(device, data):
    x = data.draw(spaced_arrays(data.draw(shapes())))  # |x| >= 0.025 >> ε, so x ± ε stays on one side of 0
    check_gradients(ops.relu, x, device=device)


def test_relu_takes_subgradient_zero_at_zero():
    x = leaf([-1.0, 0.0, 2.0])
    ops.relu(x).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 1.0]


@pytest.mark.parametrize("approximate", ["tanh", "none"])
@given(data=st.data())
def test_gelu_gradients_tanh_and_erf(device, approximate, data):
    x = data.draw(arrays(data.draw(shapes()), -4.0, 4.0))
    check_gradients(lambda t: ops.gelu(t, approximate=approximate), x, device=device)


def test_gelu_values_match_the_published_formulas():
    from math import erf, sqrt, tanh, pi

    xs = [-3.0, -0.5, 0.0, 0.7, 2.5]
    exact = [0.5 * x * (1 + erf(x / sqrt(2))) for x in xs]
    approx = [0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3))) for x in xs]
    assert_close(ops.gelu(leaf(xs), approximate="none"), np.array(exact), rtol=1e-14, atol=1e-16)
    assert_close(ops.gelu(leaf(xs), approximate="tanh"), np.array(approx), rtol=1e-14, atol=1e-16)


def test_gelu_rejects_an_unknown_approximation():
    with pytest.raises(ValueError, match="approximate"):
        ops.gelu(leaf([1.0]), approximate="sigmoid")


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
