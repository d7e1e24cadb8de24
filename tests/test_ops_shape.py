"""Shape ops (ops/shape.py): reshape, permute, transpose, getitem, concat, split."""
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
