"""Softmax and log-softmax (ops/softmax.py): gradients, the composed references, stability at logits of 1e4."""
from __future__ import annotations


import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import assert_close, check_gradients, host, leaf
from fused_checks import HUGE_LOGITS, assert_same_forward_and_backward, log_softmax_exact
from minipretrain import ops
from minipretrain.ops.softmax import log_softmax_reference, softmax_reference
from strategies import arrays, near_one_hot_logits, shapes


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@given(data=st.data())
def test_softmax_gradients_along_any_axis(device, name, data):
    shape = data.draw(shapes())
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = data.draw(arrays(shape, -3.0, 3.0))
    fn = getattr(ops, name)
    check_gradients(lambda t: fn(t, axis=axis), x, device=device)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@given(data=st.data())
def test_softmax_gradients_on_near_one_hot_logits(device, name, data):
    # Logits up to ±30: softmax saturates (p within e^-30 of 0 or 1). The derivatives stay bounded
    # (|∂p/∂x| <= 1/4), so central differences keep their default accuracy and no tolerance changes.
    x = data.draw(near_one_hot_logits(data.draw(st.integers(1, 4)), data.draw(st.integers(2, 6))))
    fn = getattr(ops, name)
    check_gradients(fn, x, device=device)


@given(data=st.data())
def test_softmax_and_log_softmax_match_their_composed_references(device, data):
    shape = data.draw(shapes(max_side=6))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = data.draw(st.one_of(arrays(shape, -5.0, 5.0),
                            near_one_hot_logits(shape[0], int(np.prod(shape[1:]))).map(lambda z: z.reshape(shape))))
    # softmax's dx = p ⊙ (g - Σ g·p) subtracts numbers the size of the upstream gradient (standard normal, O(1))
    # even when saturation leaves dx ~1e-7 (logits [15, 0, 0, 0, 0]: rounding gave a 3e-10 relative difference).
    assert_same_forward_and_backward(lambda t: ops.softmax(t, axis=axis),
                                     lambda t: softmax_reference(t, axis=axis), [x], device, grad_terms_scale=1.0)
    assert_same_forward_and_backward(lambda t: ops.log_softmax(t, axis=axis),
                                     lambda t: log_softmax_reference(t, axis=axis), [x], device)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 2e-3)], ids=["float64", "float32"])
def test_softmax_family_stays_finite_and_exact_for_logits_of_1e4(device, dtype, tol):
    # float32 holds 1e4 to within ulp(1e4)/2 ≈ 5e-4, so log-probabilities near -2e4 are exact to ~1e-3.
    expected_log = np.array([log_softmax_exact(list(row)) for row in HUGE_LOGITS])
    x = leaf(HUGE_LOGITS, device, dtype=dtype)
    log_probs, probs = ops.log_softmax(x), ops.softmax(x)
    assert np.isfinite(host(log_probs)).all() and np.isfinite(host(probs)).all()
    assert_close(log_probs, expected_log, rtol=tol, atol=tol)
    assert_close(probs, np.exp(expected_log), rtol=tol, atol=1e-30)
    (log_probs.sum() + probs.sum()).backward()
    assert np.isfinite(host(x.grad)).all()
