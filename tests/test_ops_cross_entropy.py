"""Fused cross-entropy (ops/cross_entropy.py): gradients per reduction, values, ignored targets, the composed
reference, stability."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis.extra import numpy as hnp
from hypothesis import strategies as st

from conftest import assert_close, check_gradients, host, leaf, on_device
from fused_checks import HUGE_LOGITS, assert_same_forward_and_backward, log_softmax_exact
from minipretrain import ops
from minipretrain.ops.cross_entropy import cross_entropy_reference
from strategies import arrays, near_one_hot_logits, shapes


@st.composite
def targets_for(draw, shape, classes, ignore_some=True):
    """Integer targets of ``shape`` in [0, classes), some replaced by ignore_index -100 when asked."""
    targets = draw(hnp.arrays(np.int64, shape, elements=st.integers(0, classes - 1)))
    if ignore_some:
        ignored = draw(hnp.arrays(np.bool_, shape))
        targets = np.where(ignored, ops.IGNORE_INDEX, targets)
    return targets


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(data=st.data())
def test_cross_entropy_gradients_each_reduction_with_ignored_targets(device, reduction, data):
    lead = data.draw(shapes(min_dims=1, max_dims=2))
    classes = data.draw(st.integers(2, 6))
    logits = data.draw(st.one_of(arrays(lead + (classes,), -3.0, 3.0),
                                 near_one_hot_logits(int(np.prod(lead)), classes).map(
                                     lambda z: z.reshape(lead + (classes,)))))
    targets = on_device(data.draw(targets_for(lead, classes)), device)
    check_gradients(lambda z: ops.cross_entropy(z, targets, reduction=reduction), logits, device=device)


def test_cross_entropy_values_by_hand():
    logits = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0], [1.0, 2.0, 3.0]])
    targets = np.array([0, 2, -100])
    expected = [np.log(np.exp(row).sum()) - row[t] for row, t in zip(logits[:2], targets[:2])]
    assert_close(ops.cross_entropy(leaf(logits), targets, reduction="none"), np.array(expected + [0.0]), rtol=1e-14)
    assert_close(ops.cross_entropy(leaf(logits), targets, reduction="sum"), np.array(sum(expected)), rtol=1e-14)
    assert_close(ops.cross_entropy(leaf(logits), targets), np.array(sum(expected) / 2), rtol=1e-14)


def test_cross_entropy_with_every_target_ignored_is_zero_with_zero_gradient():
    logits = leaf(np.ones((3, 4)))
    loss = ops.cross_entropy(logits, np.full(3, -100))
    loss.backward()
    assert loss.item() == 0.0 and not logits.grad.any()


def test_cross_entropy_custom_ignore_index():
    logits = np.random.default_rng(0).standard_normal((4, 3))
    targets = np.array([0, 7, 2, 7])
    check_gradients(lambda z: ops.cross_entropy(z, targets, ignore_index=7), logits)
    kept = ops.cross_entropy(leaf(logits[[0, 2]]), targets[[0, 2]])
    assert_close(ops.cross_entropy(leaf(logits), targets, ignore_index=7), kept, rtol=1e-14)


@pytest.mark.parametrize("targets, error, message", [
    (np.array([0, 3]), ValueError, r"must lie in \[0, 3\)"),
    (np.array([0, -1]), ValueError, r"must lie in \[0, 3\)"),
    (np.array([0.0, 1.0]), TypeError, "integer class ids"),
    (np.array([0, 1, 2]), ValueError, "need targets of shape"),
])
def test_cross_entropy_rejects_bad_targets(targets, error, message):
    with pytest.raises(error, match=message):
        ops.cross_entropy(leaf(np.zeros((2, 3))), targets)


def test_cross_entropy_rejects_an_unknown_reduction():
    with pytest.raises(ValueError, match="reduction"):
        ops.cross_entropy(leaf(np.zeros((2, 3))), np.array([0, 1]), reduction="avg")


@given(data=st.data())
def test_cross_entropy_matches_its_composed_reference(device, data):
    rows, classes = data.draw(st.integers(1, 6)), data.draw(st.integers(2, 8))
    logits = data.draw(st.one_of(arrays((rows, classes), -5.0, 5.0), near_one_hot_logits(rows, classes)))
    targets = data.draw(hnp.arrays(np.int64, rows, elements=st.integers(0, classes - 1)))
    targets = on_device(np.where(data.draw(hnp.arrays(np.bool_, rows)), -100, targets), device)
    n_targets = max(int((host(targets) != -100).sum()), 1)
    assert_same_forward_and_backward(lambda z: ops.cross_entropy(z, targets),
                                     lambda z: cross_entropy_reference(z, targets), [logits], device,
                                     grad_terms_scale=1.0 / n_targets)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 2e-3)], ids=["float64", "float32"])
def test_cross_entropy_stays_finite_and_exact_for_logits_of_1e4(device, dtype, tol):
    targets = np.array([1, 3, 0])  # targets with log-probabilities of -2e4, 0 - log 4, -2e4
    exact = [-log_softmax_exact(list(row))[t] for row, t in zip(HUGE_LOGITS, targets)]
    x = leaf(HUGE_LOGITS, device, dtype=dtype)
    losses = ops.cross_entropy(x, on_device(targets, device), reduction="none")
    assert_close(losses, np.array(exact), rtol=tol, atol=tol)
    loss = ops.cross_entropy(x, on_device(targets, device))
    assert_close(loss, np.array(math.fsum(exact) / 3), rtol=tol)
    loss.backward()
    grad = host(x.grad)
    assert np.isfinite(grad).all()
    # ∂loss/∂z = (softmax - onehot)/N: exact rows and targets known, so check it too.
    onehot = np.eye(4)[targets]
    assert_close(grad, (np.exp(np.array([log_softmax_exact(list(r)) for r in HUGE_LOGITS])) - onehot) / 3,
                 rtol=tol, atol=tol)
