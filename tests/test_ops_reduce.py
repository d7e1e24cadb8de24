"""Reductions (ops/reduce.py): sum, mean, var, max (ties), against NumPy and by gradient checks."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import assert_close, check_gradients, leaf
from minipretrain import ops
from strategies import arrays, axes_for, shapes, spaced_arrays


@pytest.mark.parametrize("name", ["sum", "mean", "var"])
@given(data=st.data())
def test_smooth_reduction_gradients_over_any_axes(device, name, data):
    shape = data.draw(shapes())
    axis, keepdims = data.draw(axes_for(len(shape))), data.draw(st.booleans())
    x = data.draw(arrays(shape))
    reduce = getattr(ops, name)
    check_gradients(lambda t: reduce(t, axis=axis, keepdims=keepdims), x, device=device)


@given(data=st.data())
def test_max_gradient_without_ties(device, data):
    shape = data.draw(shapes())
    axis, keepdims = data.draw(axes_for(len(shape))), data.draw(st.booleans())
    x = data.draw(spaced_arrays(shape))  # distinct values >= 0.05 apart: x ± ε never changes the argmax
    check_gradients(lambda t: ops.max(t, axis=axis, keepdims=keepdims), x, device=device)


def test_max_shares_the_gradient_equally_among_ties():
    x = leaf([[1.0, 3.0, 3.0], [2.0, 0.0, -1.0]])
    ops.max(x, axis=1).backward(np.array([1.0, 1.0]))
    assert x.grad.tolist() == [[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]]


@pytest.mark.parametrize("name", ["sum", "mean", "max", "var"])
def test_reductions_match_numpy(name):
    x = np.random.default_rng(1).standard_normal((3, 4, 5))
    for axis in [None, 0, -1, (0, 2)]:
        for keepdims in [False, True]:
            got = getattr(ops, name)(leaf(x), axis=axis, keepdims=keepdims)
            assert_close(got, getattr(np, name)(x, axis=axis, keepdims=keepdims), rtol=1e-13, what=f"{axis}")


def test_var_with_ddof_matches_numpy_and_refuses_no_degrees_of_freedom():
    x = np.random.default_rng(2).standard_normal((4, 3))
    assert_close(ops.var(leaf(x), axis=0, ddof=1), np.var(x, axis=0, ddof=1), rtol=1e-13)
    check_gradients(lambda t: ops.var(t, axis=0, ddof=1), x)
    with pytest.raises(ValueError, match="degrees of freedom"):
        ops.var(leaf(np.ones((1, 3))), axis=0, ddof=1)


def test_reduction_over_an_axis_out_of_range_is_a_clear_error():
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        ops.sum(leaf(np.ones((2, 3))), axis=2)
