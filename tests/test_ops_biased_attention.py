"""Attention with an additive bias (ops/biased_attention.py, T5's position bias and cross-attention): gradients
to q, k, v and the bias (padding, causal, dropout), the composed reference (its masks built on its own) to
1e-10 of each array's largest entry (fused_checks.RTOL), masks by hand, bad arguments."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import check_gradients, leaf, on_device
from fused_checks import assert_same_forward_and_backward
from minipretrain.backend import module_for
from minipretrain.ops.biased_attention import biased_attention, biased_attention_reference
from strategies import arrays, padding_masks, right_padding_masks


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

    assert_same_forward_and_backward(fused, composed, [q, k, v, bias], device)


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
