"""The ops T5 and ELECTRA add: RMS layer norm, attention with an additive (position) bias and cross-attention,
binary cross-entropy with logits. Each: hypothesis gradient checks in float64, and fused vs composed reference.

Fused vs reference must agree to 1e-10 relative to each array's largest entry (both are exact up to rounding,
~1e-15; a wrong backward term gives O(1) differences).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import assert_close, check_gradients, host, leaf, on_device
from minipretrain.backend import module_for
from minipretrain.ops.biased_attention import biased_attention, biased_attention_reference
from minipretrain.ops.binary_cross_entropy import (
    binary_cross_entropy_with_logits, binary_cross_entropy_with_logits_reference,
)
from minipretrain.ops.rms_norm import rms_norm, rms_norm_reference
from strategies import arrays, padding_masks, right_padding_masks, shapes, tiny_variance_rows

RTOL = 1e-10


def outputs_and_grads(fn, arrays_, device, seed=0):
    inputs = [leaf(a, device) for a in arrays_]
    out = fn(*inputs)
    out.backward(on_device(np.random.default_rng(seed).standard_normal(out.shape), device))
    return host(out), [host(x.grad) for x in inputs]


def assert_fused_matches_reference(fused, composed, arrays_, device):
    out_f, grads_f = outputs_and_grads(fused, arrays_, device)
    out_c, grads_c = outputs_and_grads(composed, arrays_, device)
    assert_close(out_f, out_c, rtol=RTOL, atol=RTOL * np.abs(out_c).max(initial=0), what="forward")
    for i, (g_f, g_c) in enumerate(zip(grads_f, grads_c)):
        assert_close(g_f, g_c, rtol=RTOL, atol=RTOL * np.abs(g_c).max(initial=0), what=f"gradient of input {i}")


# ------------------------------------------------------------------------------------------------ RMS norm
@given(data=st.data())
def test_rms_norm_gradients(device, data):
    shape = data.draw(shapes(max_side=5))
    x = data.draw(st.one_of(arrays(shape), tiny_variance_rows(shape)))
    w = data.draw(arrays(shape[-1:]))
    check_gradients(lambda x_, w_: rms_norm(x_, w_, eps=1e-6), x, w, device=device)


@given(data=st.data())
def test_rms_norm_matches_its_reference(device, data):
    shape = data.draw(shapes(max_side=6))
    x, w = data.draw(arrays(shape, -5.0, 5.0)), data.draw(arrays(shape[-1:]))
    assert_fused_matches_reference(rms_norm, rms_norm_reference, [x, w], device)


def test_rms_norm_values_by_hand_no_mean_subtracted():
    x = leaf([[3.0, 4.0]], requires_grad=False)
    # mean(x²) = 12.5, so y = x / √(12.5 + ε) · w; an offset is *not* removed (unlike layer norm)
    y = rms_norm(x, leaf([1.0, 2.0], requires_grad=False), eps=1e-6).numpy()
    np.testing.assert_allclose(y, [[3 / np.sqrt(12.5 + 1e-6), 8 / np.sqrt(12.5 + 1e-6)]], rtol=1e-15)


def test_rms_norm_rejects_bad_weight_and_eps():
    with pytest.raises(ValueError, match="expected \\(3,\\)"):
        rms_norm(leaf(np.ones((2, 3))), leaf(np.ones(2)))
    with pytest.raises(ValueError, match="eps must be positive"):
        rms_norm(leaf(np.ones((2, 3))), leaf(np.ones(3)), eps=0.0)


# ------------------------------------------------------------------------------- attention with a bias
@st.composite
def biased_case(draw, causal=False):
    """q, k, v and a bias of a broadcastable shape ((1, H, Tq, Tk) as T5, or the full (B, H, Tq, Tk))."""
    b, h = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    tk = draw(st.integers(1, 4))
    tq = draw(st.integers(1, tk)) if causal else draw(st.integers(1, 4))  # Tq ≠ Tk: cross-attention
    d, dv = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    bias_batch = draw(st.sampled_from([1, b]))
    return (draw(arrays((b, h, tq, d))), draw(arrays((b, h, tk, d))), draw(arrays((b, h, tk, dv))),
            draw(arrays((bias_batch, h, tq, tk), -3.0, 3.0)))


@pytest.mark.parametrize("causal", [False, True], ids=["cross/full", "causal"])
@given(data=st.data())
def test_biased_attention_gradients_reach_q_k_v_and_the_bias(device, causal, data):
    q, k, v, bias = data.draw(biased_case(causal))
    mask = on_device(data.draw(st.one_of(padding_masks(k.shape[0], k.shape[2], causal=causal),
                                         right_padding_masks(k.shape[0], k.shape[2]))), device)
    scale = data.draw(st.sampled_from([1.0, 0.5]))
    check_gradients(lambda q_, k_, v_, b_: biased_attention(q_, k_, v_, b_, causal=causal, key_padding_mask=mask,
                                                            scale=scale),
                    q, k, v, bias, device=device)


@given(data=st.data())
def test_biased_attention_gradients_with_dropout(device, data):
    q, k, v, bias = data.draw(biased_case())
    seed = data.draw(st.integers(0, 2**16))
    xp = module_for(device)
    check_gradients(lambda q_, k_, v_, b_: biased_attention(q_, k_, v_, b_, dropout_p=0.3,
                                                            rng=xp.random.default_rng(seed)),
                    q, k, v, bias, device=device)


@pytest.mark.parametrize("causal", [False, True], ids=["cross/full", "causal"])
@given(data=st.data())
def test_biased_attention_matches_its_reference(device, causal, data):
    q, k, v, bias = data.draw(biased_case(causal))
    mask = on_device(data.draw(padding_masks(k.shape[0], k.shape[2], causal=causal)), device)

    def fused(q_, k_, v_, b_):
        return biased_attention(q_, k_, v_, b_, causal=causal, key_padding_mask=mask)

    def composed(q_, k_, v_, b_):
        return biased_attention_reference(q_, k_, v_, b_, causal=causal, key_padding_mask=mask)

    assert_fused_matches_reference(fused, composed, [q, k, v, bias], device)


def test_biased_attention_masks_by_hand():
    """One query over three keys with scores 0: padding and causality hide exactly the keys they should."""
    q, k = leaf(np.zeros((1, 1, 1, 1)), requires_grad=False), leaf(np.zeros((1, 1, 3, 1)), requires_grad=False)
    v = leaf(np.array([1.0, 10.0, 100.0]).reshape(1, 1, 3, 1), requires_grad=False)
    bias = leaf(np.log(np.array([1.0, 2.0, 3.0])).reshape(1, 1, 1, 3), requires_grad=False)
    # softmax(log [1, 2, 3]) = [1, 2, 3]/6
    assert biased_attention(q, k, v, bias).item() == pytest.approx((1 + 20 + 300) / 6, rel=1e-14)
    padded = biased_attention(q, k, v, bias, key_padding_mask=np.array([[True, True, False]]))
    assert padded.item() == pytest.approx((1 + 20) / 3, rel=1e-14)
    # causal with Tq = 1 < Tk = 3: the query is the last position and sees every key
    assert biased_attention(q, k, v, bias, causal=True).item() == pytest.approx(321 / 6, rel=1e-14)
    q2 = leaf(np.zeros((1, 1, 3, 1)), requires_grad=False)
    causal = biased_attention(q2, k, v, leaf(np.zeros((1, 1, 3, 3)), requires_grad=False), causal=True).numpy()
    np.testing.assert_allclose(causal.reshape(-1), [1.0, 11 / 2, 111 / 3], rtol=1e-14)


@pytest.mark.parametrize("kwargs, message", [
    (dict(bias=np.zeros((1, 3, 2, 2))), "does not broadcast"),
    (dict(key_padding_mask=np.ones((1, 3), bool)), "key_padding_mask must have shape"),
    (dict(dropout_p=0.5), "seeded generator"),
    (dict(dropout_p=1.0), "dropout_p must be in"),
])
def test_biased_attention_rejects_bad_arguments(kwargs, message):
    q = leaf(np.zeros((1, 2, 2, 4)))
    if "bias" in kwargs:
        kwargs = dict(kwargs, bias=leaf(kwargs["bias"]))
    with pytest.raises(ValueError, match=message):
        biased_attention(q, q, q, **kwargs)


# --------------------------------------------------------------------------------- binary cross-entropy
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(data=st.data())
def test_binary_cross_entropy_gradients(device, reduction, data):
    shape = data.draw(shapes(max_side=5))
    z = data.draw(arrays(shape, -6.0, 6.0))
    y = on_device(data.draw(st.one_of(arrays(shape, 0.0, 1.0), arrays(shape, 0.0, 1.0).map(np.round))), device)
    mask = data.draw(st.one_of(st.none(), padding_masks(1, int(np.prod(shape))).map(lambda m: m.reshape(shape))))
    mask = None if mask is None else on_device(mask, device)
    check_gradients(lambda z_: binary_cross_entropy_with_logits(z_, y, mask=mask, reduction=reduction),
                    z, device=device)


@given(data=st.data())
def test_binary_cross_entropy_matches_its_reference(device, data):
    shape = data.draw(shapes(max_side=5))
    z, y = data.draw(arrays(shape, -8.0, 8.0)), data.draw(arrays(shape, 0.0, 1.0).map(np.round))
    y = on_device(y, device)
    assert_fused_matches_reference(lambda z_: binary_cross_entropy_with_logits(z_, y),
                                   lambda z_: binary_cross_entropy_with_logits_reference(z_, y), [z], device)


def test_binary_cross_entropy_is_stable_at_plus_minus_1e4():
    z = leaf([1e4, -1e4, 1e4, -1e4])
    loss = binary_cross_entropy_with_logits(z, np.array([1.0, 0.0, 0.0, 1.0]), reduction="none")
    loss.backward(np.ones(4))
    # confident and right: 0 (to the last bit); confident and wrong: exactly |z|
    np.testing.assert_array_equal(loss.numpy(), [0.0, 0.0, 1e4, 1e4])
    np.testing.assert_array_equal(z.grad, [0.0, 0.0, 1.0, -1.0])
    assert np.isfinite(loss.numpy()).all()


def test_binary_cross_entropy_mask_and_mean_by_hand():
    z = leaf([0.0, 0.0, 5.0])
    loss = binary_cross_entropy_with_logits(z, np.array([1.0, 0.0, 1.0]), mask=np.array([1, 1, 0]))
    assert loss.item() == pytest.approx(np.log(2.0), rel=1e-15)  # the masked third position does not count
    loss.backward()
    np.testing.assert_allclose(z.grad, [-0.25, 0.25, 0.0], rtol=1e-15)


def test_binary_cross_entropy_rejects_bad_shapes_and_reductions():
    z = leaf([0.0, 1.0])
    with pytest.raises(ValueError, match="targets"):
        binary_cross_entropy_with_logits(z, np.zeros(3))
    with pytest.raises(ValueError, match="mask"):
        binary_cross_entropy_with_logits(z, np.zeros(2), mask=np.ones(3))
    with pytest.raises(ValueError, match="reduction"):
        binary_cross_entropy_with_logits(z, np.zeros(2), reduction="avg")
