"""Element-wise arithmetic and the simple nonlinearities (ops/elementwise.py): gradient checks with broadcasting."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import check_gradients, leaf
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
