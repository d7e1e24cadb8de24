"""GELU in both forms (ops/activations.py): gradients, the published values, the composed reference."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import assert_close, check_gradients, leaf
from fused_checks import assert_same_forward_and_backward
from minipretrain import ops
from minipretrain.ops.activations import gelu_tanh_reference
from strategies import arrays, shapes


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


@given(data=st.data())
def test_gelu_tanh_matches_its_composed_reference(device, data):
    x = data.draw(arrays(data.draw(shapes()), -6.0, 6.0))
    assert_same_forward_and_backward(ops.gelu, gelu_tanh_reference, [x], device)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gelu_tanh_of_very_negative_inputs_is_zero_with_zero_slope_and_no_overflow_warning(dtype):
    # σ(2u) = 1/(1 + e^(-2u)): e^(-2u) overflows to inf here (x ≲ -10 in float32, ≲ -22 in float64), and 1/inf = 0 is the exact limit.
    x = leaf(np.array([-1e4, -60.0], dtype=dtype))
    y = ops.gelu(x, approximate="tanh")  # the suite turns RuntimeWarnings from minipretrain into errors
    y.sum().backward()
    assert np.all(y.data == 0) and np.all(x.grad == 0)
