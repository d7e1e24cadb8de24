"""Fused scaled-dot-product attention (ops/attention.py): gradients (causal, padding, dropout, Tq < Tk), the
composed reference, fully masked rows."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import assert_close, check_gradients, host, leaf, on_device
from fused_checks import assert_same_forward_and_backward
from minipretrain import ops
from minipretrain.backend import module_for
from minipretrain.ops.attention import attention_reference
from minipretrain.ops.dropout import keep_mask
from strategies import arrays, padding_masks, right_padding_masks


@st.composite
def attention_case(draw, tq_le_tk=False):
    """q (B,H,Tq,D), k (B,H,Tk,D), v (B,H,Tk,Dv) float64 arrays; Tq <= Tk when ``tq_le_tk``."""
    b, h = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    tk = draw(st.integers(1, 4))
    tq = draw(st.integers(1, tk)) if tq_le_tk else draw(st.integers(1, 4))
    d, dv = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return (draw(arrays((b, h, tq, d))), draw(arrays((b, h, tk, d))), draw(arrays((b, h, tk, dv))))


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@given(data=st.data())
def test_attention_gradients_causal_or_full_including_tq_less_than_tk(device, causal, data):
    q, k, v = data.draw(attention_case(tq_le_tk=causal))
    check_gradients(lambda q_, k_, v_: ops.scaled_dot_product_attention(q_, k_, v_, causal=causal),
                    q, k, v, device=device)


@pytest.mark.parametrize("causal", [False, True], ids=["padding", "padding+causal"])
@given(data=st.data())
def test_attention_gradients_with_padding_masks(device, causal, data):
    q, k, v = data.draw(attention_case(tq_le_tk=causal))
    batch, keys = k.shape[0], k.shape[2]
    mask = data.draw(st.one_of(padding_masks(batch, keys, causal=causal), right_padding_masks(batch, keys)))
    mask = on_device(mask, device)
    check_gradients(lambda q_, k_, v_: ops.scaled_dot_product_attention(q_, k_, v_, causal=causal,
                                                                        key_padding_mask=mask),
                    q, k, v, device=device)


@given(data=st.data())
def test_attention_gradients_with_dropout_and_a_custom_scale(device, data):
    q, k, v = data.draw(attention_case(tq_le_tk=True))
    seed, p = data.draw(st.integers(0, 2**16)), data.draw(st.sampled_from([0.2, 0.5]))
    xp = module_for(device)
    check_gradients(lambda q_, k_, v_: ops.scaled_dot_product_attention(
        q_, k_, v_, causal=True, dropout_p=p, rng=xp.random.default_rng(seed), scale=0.7), q, k, v, device=device)


def test_attention_key_padding_mask_may_be_a_tensor_of_zeros_and_ones():
    rng = np.random.default_rng(4)
    q, k, v = (leaf(rng.standard_normal((2, 1, 3, 2))) for _ in range(3))
    as_bool = np.array([[True, True, False], [True, False, False]])
    with_bool = ops.scaled_dot_product_attention(q, k, v, key_padding_mask=as_bool)
    with_ints = ops.scaled_dot_product_attention(q, k, v, key_padding_mask=leaf(as_bool.astype(np.int64),
                                                                                requires_grad=False, dtype=np.int64))
    assert_close(with_ints, with_bool, rtol=0)
    # A padded key gets no weight: changing its value changes nothing.
    v2 = leaf(np.where(as_bool[:, None, :, None], v.data, 100.0))
    assert_close(ops.scaled_dot_product_attention(q, k, v2, key_padding_mask=as_bool), with_bool, rtol=1e-15)


@pytest.mark.parametrize("shapes_, kwargs, message", [
    (((2, 3, 4), (2, 3, 4), (2, 3, 4)), {}, r"shape \(B, H, T, D\)"),
    (((1, 1, 3, 4), (1, 1, 3, 5), (1, 1, 3, 4)), {}, "incompatible shapes"),
    (((1, 1, 3, 4), (1, 1, 3, 4), (1, 1, 2, 4)), {}, "incompatible shapes"),
    (((1, 1, 3, 4),) * 3, {"dropout_p": 1.0}, r"dropout_p must be in \[0, 1\)"),
    (((1, 1, 3, 4),) * 3, {"dropout_p": 0.1}, "seeded generator"),
    (((1, 1, 3, 4),) * 3, {"key_padding_mask": np.ones((1, 4), bool)}, r"must have shape \(B, Tk\) = \(1, 3\)"),
])
def test_attention_rejects_bad_arguments(shapes_, kwargs, message):
    q, k, v = (leaf(np.zeros(s)) for s in shapes_)
    with pytest.raises(ValueError, match=message):
        ops.scaled_dot_product_attention(q, k, v, **kwargs)


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


@pytest.mark.parametrize("tq, tk", [(5, 5), (2, 5)], ids=["square", "decoding"])
def test_a_window_bands_the_causal_mask_and_a_wide_one_is_the_causal_mask(tq, tk):
    from minipretrain.ops.attention import attention_mask

    causal = np.broadcast_to(attention_mask(np, tq, tk, True, None), (1, 1, tq, tk))[0, 0]
    for window in (tk, tk + 3):
        np.testing.assert_array_equal(attention_mask(np, tq, tk, True, None, window=window)[0, 0], causal)
    banded = attention_mask(np, tq, tk, True, None, window=2)[0, 0]
    # Query i sits at key position i + tk - tq and sees that key and the one before it, nothing else.
    expected = np.zeros((tq, tk), dtype=bool)
    for i in range(tq):
        position = i + tk - tq
        expected[i, max(0, position - 1):position + 1] = True
    np.testing.assert_array_equal(banded, expected)


@pytest.mark.parametrize("window", [1, 2, 3])
def test_windowed_attention_equals_the_composed_reference_with_its_own_mask(device, window):
    rng = np.random.default_rng(7)
    q, k, v = (rng.standard_normal((2, 2, 4, 3)) for _ in range(3))
    assert_same_forward_and_backward(
        lambda q_, k_, v_: ops.scaled_dot_product_attention(q_, k_, v_, causal=True, window=window),
        lambda q_, k_, v_: attention_reference(q_, k_, v_, causal=True, window=window), [q, k, v], device)
    check_gradients(lambda q_, k_, v_: ops.scaled_dot_product_attention(q_, k_, v_, causal=True, window=window),
                    q, k, v, device=device)


@pytest.mark.parametrize("kwargs", [{"window": 0, "causal": True}, {"window": 2, "causal": False},
                                    {"window": 1.5, "causal": True}])
def test_a_window_must_be_a_positive_whole_number_on_causal_attention(kwargs):
    q = leaf(np.ones((1, 1, 2, 2)))
    with pytest.raises(ValueError, match="window"):
        ops.scaled_dot_product_attention(q, q, q, **kwargs)
