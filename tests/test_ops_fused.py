"""Fused ops against their composed references (each beside its fused op), and numerical stability.

A fused op has a hand-derived backward; its reference is built from primitive ops, so autograd derives the
same gradient independently. In float64 both are exact up to rounding, so they must agree to 1e-10 relative
to the largest entry (rounding alone gives ~1e-15; a wrong term in a backward gives O(1) differences).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from conftest import assert_close, host, leaf, on_device
from minipretrain import ops
from minipretrain.backend import module_for
from minipretrain.ops.activations import gelu_tanh_reference
from minipretrain.ops.attention import attention_reference
from minipretrain.ops.cross_entropy import cross_entropy_reference
from minipretrain.ops.layer_norm import layer_norm_reference
from minipretrain.ops.softmax import log_softmax_reference, softmax_reference
from minipretrain.ops.dropout import keep_mask
from strategies import arrays, near_one_hot_logits, padding_masks, shapes, tiny_variance_rows

RTOL = 1e-10


def forward_and_grads(fn, arrays_, device, upstream_seed=0):
    """Run ``fn`` on float64 leaves made from ``arrays_``, backpropagate a seeded random upstream gradient.

    Returns (output as NumPy, [gradient of each input as NumPy]). The same seed gives the same upstream
    gradient, so a fused op and its reference receive identical dL/dy.
    """
    inputs = [leaf(a, device) for a in arrays_]
    out = fn(*inputs)
    upstream = np.random.default_rng(upstream_seed).standard_normal(out.shape)
    out.backward(on_device(upstream, device))
    return host(out), [host(x.grad) for x in inputs]


def assert_same_forward_and_backward(fused, composed, arrays_, device, grad_terms_scale=0.0):
    """Fused and composed agree in output and every input gradient, to RTOL of each array's largest entry.

    ``grad_terms_scale`` is the size of the terms a gradient is the difference of, when that is larger than the
    gradient itself: cross-entropy's p - onehot is a difference of numbers up to 1 even when it is 1e-8, so
    rounding leaves ~1e-16 absolute error there, and RTOL must apply to that scale, not to the tiny result.
    """
    out_f, grads_f = forward_and_grads(fused, arrays_, device)
    out_c, grads_c = forward_and_grads(composed, arrays_, device)
    assert_close(out_f, out_c, rtol=RTOL, atol=RTOL * np.abs(out_c).max(initial=0), what="forward")
    for i, (g_f, g_c) in enumerate(zip(grads_f, grads_c)):
        scale = max(np.abs(g_c).max(initial=0), grad_terms_scale)
        assert_close(g_f, g_c, rtol=RTOL, atol=RTOL * scale, what=f"gradient of input {i}")


@given(data=st.data())
def test_softmax_and_log_softmax_match_their_composed_references(device, data):
    shape = data.draw(shapes(max_side=6))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = data.draw(st.one_of(arrays(shape, -5.0, 5.0),
                            near_one_hot_logits(shape[0], int(np.prod(shape[1:]))).map(lambda z: z.reshape(shape))))
    assert_same_forward_and_backward(lambda t: ops.softmax(t, axis=axis),
                                     lambda t: softmax_reference(t, axis=axis), [x], device)
    assert_same_forward_and_backward(lambda t: ops.log_softmax(t, axis=axis),
                                     lambda t: log_softmax_reference(t, axis=axis), [x], device)


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


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "no-affine"])
@given(data=st.data())
def test_layer_norm_matches_its_composed_reference(device, affine, data):
    shape = data.draw(shapes(min_side=2, max_side=6))
    x = data.draw(st.one_of(arrays(shape, -3.0, 3.0), tiny_variance_rows(shape)))
    if affine:
        params = [data.draw(arrays(shape[-1:])), data.draw(arrays(shape[-1:]))]
        assert_same_forward_and_backward(ops.layer_norm, layer_norm_reference, [x] + params, device)
    else:
        assert_same_forward_and_backward(ops.layer_norm, layer_norm_reference, [x], device)


@given(data=st.data())
def test_gelu_tanh_matches_its_composed_reference(device, data):
    x = data.draw(arrays(data.draw(shapes()), -6.0, 6.0))
    assert_same_forward_and_backward(ops.gelu, gelu_tanh_reference, [x], device)


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("padding", [False, True], ids=["no-padding", "padding"])
@pytest.mark.parametrize("dropout_p", [0.0, 0.3])
@given(data=st.data())
def test_attention_matches_its_composed_reference(device, causal, padding, dropout_p, data):
    b, h, d, dv = (data.draw(st.integers(1, 3)) for _ in range(4))
    tk = data.draw(st.integers(1, 5))
    tq = data.draw(st.integers(1, tk))  # Tq <= Tk, so causal rows always keep a key
    q, k, v = data.draw(arrays((b, h, tq, d))), data.draw(arrays((b, h, tk, d))), data.draw(arrays((b, h, tk, dv)))
    mask = on_device(data.draw(padding_masks(b, tk, causal=causal)), device) if padding else None
    seed = data.draw(st.integers(0, 2**16))
    xp = module_for(device)
    keep = None
    if dropout_p:
        # Replay the fused op's dropout mask: keep_mask draws from a generator with the same seed first.
        keep = keep_mask((b, h, tq, tk), dropout_p, xp.random.default_rng(seed), np.dtype(np.float64))

    def fused(q_, k_, v_):
        rng = xp.random.default_rng(seed) if dropout_p else None
        return ops.scaled_dot_product_attention(q_, k_, v_, causal=causal, key_padding_mask=mask,
                                                dropout_p=dropout_p, rng=rng)

    def composed(q_, k_, v_):
        return attention_reference(q_, k_, v_, causal=causal, key_padding_mask=mask, keep=keep)

    assert_same_forward_and_backward(fused, composed, [q, k, v], device)


def test_attention_reference_runs_in_float32_with_its_own_mask_value():
    rng = np.random.default_rng(5)
    q, k, v = (leaf(rng.standard_normal((1, 2, 4, 3)), dtype=np.float32) for _ in range(3))
    fused = ops.scaled_dot_product_attention(q, k, v, causal=True)
    composed = attention_reference(q, k, v, causal=True)
    assert composed.dtype == np.float32
    # float32 rounding (~6e-8 per op, a few dozen ops) bounds the difference at a few 1e-6.
    assert_close(fused, composed, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------------------------- stability


def log_softmax_exact(row):
    """log-softmax of one row of Python floats: x - (m + log Σ exp(x - m)), the sum by math.fsum."""
    m = max(row)
    lse = m + math.log(math.fsum(math.exp(x - m) for x in row))
    return [x - lse for x in row]


HUGE_LOGITS = np.array([[1e4, -1e4, 0.0, 9999.0],
                        [-1e4, -1e4, -1e4, -1e4],
                        [-1e4, 1e4, 1e4 - 30, -9990.0]])


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


def test_fully_masked_attention_rows_give_zeros_not_nan(device):
    rng = np.random.default_rng(6)
    q = leaf(rng.standard_normal((2, 1, 4, 3)), device)
    k2, v2 = (leaf(rng.standard_normal((2, 1, 2, 3)), device) for _ in range(2))
    # Batch 1 has no real key at all; with causal and Tq = 4 > Tk = 2, queries 0 and 1 see no key either.
    mask = on_device(np.array([[True, True], [False, False]]), device)
    out = ops.scaled_dot_product_attention(q, k2, v2, causal=True, key_padding_mask=mask)
    values = host(out)
    assert np.isfinite(values).all()
    assert not values[1].any(), "a batch with no real key attends to nothing"
    assert not values[0, :, :2].any(), "queries before the first key attend to nothing"
    assert values[0, :, 2:].any()
    out.backward(on_device(rng.standard_normal(out.shape), device))
    for t in (q, k2, v2):
        assert np.isfinite(host(t.grad)).all()
    assert not host(q.grad)[1].any() and not host(q.grad)[0, :, :2].any()
