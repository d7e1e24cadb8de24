"""Gradient checks of reductions (sum, mean, max, var), shape ops, indexing, concat/split, where and masked_fill."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from conftest import assert_close, check_gradients, leaf, on_device
from minipretrain import ops
from strategies import arrays, axes_for, broadcastable_shapes, shapes, spaced_arrays

# ----------------------------------------------------------------------------------------------- reductions


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


# ----------------------------------------------------------------------------------------------- shape ops


@given(data=st.data())
def test_reshape_gradient(device, data):
    shape = data.draw(shapes())
    new_shape = tuple(reversed(shape)) + (1,)
    check_gradients(lambda t: ops.reshape(t, new_shape), data.draw(arrays(shape)), device=device)
    check_gradients(lambda t: t.reshape(-1), data.draw(arrays(shape)), device=device)


@given(data=st.data())
def test_permute_and_transpose_gradients(device, data):
    shape = data.draw(shapes(min_dims=2, max_dims=4))
    axes = tuple(data.draw(st.permutations(range(len(shape)))))
    x = data.draw(arrays(shape))
    check_gradients(lambda t: ops.permute(t, axes), x, device=device)
    check_gradients(lambda t: ops.transpose(t, 0, -1), x, device=device)
    check_gradients(lambda t: t.T, x, device=device)


def test_permute_rejects_a_non_permutation():
    with pytest.raises(ValueError, match="not an ordering"):
        ops.permute(leaf(np.ones((2, 3))), (0, 0))


@given(data=st.data())
def test_getitem_gradient_with_slices_and_ints(device, data):
    shape = data.draw(shapes(min_dims=2, max_dims=3, min_side=2))
    x = data.draw(arrays(shape))
    index = (data.draw(st.integers(-shape[0], shape[0] - 1)), slice(None, None, data.draw(st.integers(1, 2))))
    check_gradients(lambda t: t[index], x, device=device)
    check_gradients(lambda t: t[1:, ::-1], x, device=device)


@given(data=st.data())
def test_getitem_gradient_with_integer_arrays_including_repeats(device, data):
    shape = data.draw(shapes(min_dims=1, max_dims=3))
    x = data.draw(arrays(shape))
    picks = data.draw(hnp.arrays(np.int64, data.draw(st.integers(1, 6)), elements=st.integers(0, shape[0] - 1)))
    picks = np.concatenate([picks, picks[:1]])  # at least one repeat: the scatter must add, not assign
    ids = on_device(picks, device)
    check_gradients(lambda t: t[ids], x, device=device)
    if len(shape) > 1:
        check_gradients(lambda t: t[:, on_device(np.zeros(3, np.int64), device)], x, device=device)


def test_getitem_repeated_index_accumulates_exactly():
    x = leaf([10.0, 20.0, 30.0])
    x[[0, 0, 2, 0]].backward(np.array([1.0, 2.0, 3.0, 4.0]))
    assert x.grad.tolist() == [7.0, 0.0, 3.0]


def test_getitem_with_a_boolean_mask_and_a_tensor_index():
    x = np.arange(6.0).reshape(2, 3)
    mask = x > 2.5
    check_gradients(lambda t: t[mask], x)
    check_gradients(lambda t: t[leaf([1, 0], requires_grad=False, dtype=np.int64)], x)
    check_gradients(lambda t: t[leaf([1], requires_grad=False, dtype=np.int64), 1:], x)


@given(data=st.data())
def test_concat_gradient_along_any_axis(device, data):
    shape = data.draw(shapes(min_dims=1, max_dims=3))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    pieces = []
    for _ in range(data.draw(st.integers(1, 3))):
        piece_shape = list(shape)
        piece_shape[axis] = data.draw(st.integers(1, 3))
        pieces.append(data.draw(arrays(tuple(piece_shape))))
    check_gradients(lambda *ts: ops.concat(ts, axis=axis), *pieces, device=device)


def test_concat_needs_at_least_one_tensor():
    with pytest.raises(ValueError, match="at least one"):
        ops.concat([])


@given(data=st.data())
def test_split_gradient_into_sections_and_sizes(device, data):
    shape = data.draw(shapes(min_dims=1, max_dims=3, min_side=2))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    length = shape[axis]
    first = data.draw(st.integers(1, length - 1))
    x = data.draw(arrays(shape))
    # Weighting the pieces differently makes a backward that mixes them up fail.
    check_gradients(lambda t: ops.concat([p * (i + 1.0) for i, p in enumerate(ops.split(t, [first, length - first],
                                                                                          axis=axis))], axis=axis),
                    x, device=device)
    sections = length if length <= 3 else 1
    check_gradients(lambda t: ops.concat(ops.split(t, sections, axis=axis)[::-1], axis=axis), x, device=device)


def test_split_rejects_sizes_that_do_not_add_up():
    x = leaf(np.ones((2, 5)))
    with pytest.raises(ValueError, match="does not divide"):
        ops.split(x, 2)
    with pytest.raises(ValueError, match="add up to 4"):
        ops.split(x, [1, 3])


# ----------------------------------------------------------------------------------------------- selection


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
