"""Selection (ops/select.py): where and masked_fill."""
from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis.extra import numpy as hnp
from hypothesis import strategies as st

from conftest import check_gradients, leaf, on_device
from minipretrain import ops
from strategies import arrays, broadcastable_shapes, shapes


@given(data=st.data())
def test_where_gradient_with_broadcasting(device, data):
    a_shape, b_shape = data.draw(broadcastable_shapes())
    condition_shape = np.broadcast_shapes(a_shape, b_shape)
    condition = on_device(data.draw(hnp.arrays(np.bool_, condition_shape)), device)
    a, b = data.draw(arrays(a_shape)), data.draw(arrays(b_shape))
    check_gradients(lambda x, y: ops.where(condition, x, y), a, b, device=device)


def test_where_gradient_to_only_one_side():
    a, b = leaf([1.0, 2.0, 3.0]), leaf([4.0, 5.0, 6.0], requires_grad=False)
    condition = leaf([True, False, True], requires_grad=False, dtype=bool)
    ops.where(condition, a, b).sum().backward()
    assert a.grad.tolist() == [1.0, 0.0, 1.0] and b.grad is None


@given(data=st.data())
def test_masked_fill_gradient_with_a_broadcast_mask(device, data):
    shape = data.draw(shapes(min_dims=2))
    mask = data.draw(hnp.arrays(np.bool_, (1,) + shape[1:]))
    x = data.draw(arrays(shape))
    # A moderate fill value: with -1e9 the objective Σ u·y would be ~1e9 and its rounding error, ~1e-16·1e9/ε
    # = 0.1, would swamp the central difference. The fill value never reaches the gradient anyway.
    check_gradients(lambda t: ops.masked_fill(t, on_device(mask, device), -3.0), x, device=device)


def test_masked_fill_values_and_method_form():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    out = x.masked_fill(leaf([[True, False], [False, True]], requires_grad=False, dtype=bool), -5.0)
    assert out.data.tolist() == [[-5.0, 2.0], [3.0, -5.0]]
    out.sum().backward()
    assert x.grad.tolist() == [[0.0, 1.0], [1.0, 0.0]]
