"""Gradient checks of the neural-network ops: softmax, log_softmax, cross_entropy, layer_norm, embedding,
dropout and scaled-dot-product attention (float64, on hypothesis-drawn shapes and values)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from conftest import assert_close, check_gradients, leaf, on_device
from minipretrain import ops
from minipretrain.backend import module_for
from strategies import (arrays, near_one_hot_logits, padding_masks, right_padding_masks, shapes,
                        tiny_variance_rows)

# ----------------------------------------------------------------------------------------------- softmax


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


# ----------------------------------------------------------------------------------------------- cross-entropy


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


# ----------------------------------------------------------------------------------------------- layer norm


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "no-affine"])
@given(data=st.data())
def test_layer_norm_gradients_with_and_without_affine(device, affine, data):
    shape = data.draw(shapes(min_dims=1, max_dims=3, min_side=2))
    x = data.draw(arrays(shape))
    if affine:
        weight, bias = data.draw(arrays(shape[-1:])), data.draw(arrays(shape[-1:]))
        check_gradients(lambda t, w, b: ops.layer_norm(t, w, b), x, weight, bias, device=device)
    else:
        check_gradients(ops.layer_norm, x, device=device)


@given(data=st.data())
def test_layer_norm_gradients_with_tiny_variance(device, data):
    shape = data.draw(shapes(min_dims=1, max_dims=2, min_side=2))
    x = data.draw(tiny_variance_rows(shape))
    weight = data.draw(arrays(shape[-1:]))
    # Rows with σ² (1e-8..1e-4) at or far below ε = 1e-5: the slope reaches 1/√(σ² + ε) ≈ 316. The curvature is
    # set by σ² + ε, not by σ alone (|∂³y/∂x³| <~ r/(σ² + ε) ≈ 3e7), so the default step's truncation error
    # is ε_fd²/6 · 3e7 ≈ 5e-6 absolute, ~2e-8 relative to slopes ~316: within the default rtol 1e-6. (A
    # smaller step only adds rounding error: measured worst relative errors 1e-8 at 1e-6, 2e-6 at 1e-8.)
    check_gradients(lambda t, w: ops.layer_norm(t, w), x, weight, device=device)


def test_layer_norm_output_has_zero_mean_and_unit_variance():
    x = np.random.default_rng(3).standard_normal((4, 16)) * 5 + 2
    y = ops.layer_norm(leaf(x), eps=1e-12).data
    assert_close(y.mean(axis=-1), np.zeros(4), atol=1e-14)
    assert_close(y.var(axis=-1), np.ones(4), rtol=1e-10)


def test_layer_norm_rejects_wrong_parameter_shapes_and_eps():
    x = leaf(np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"weight has shape \(3,\), expected \(4,\)"):
        ops.layer_norm(x, leaf(np.ones(3)))
    with pytest.raises(ValueError, match="eps must be positive"):
        ops.layer_norm(x, eps=0.0)


# ----------------------------------------------------------------------------------------------- embedding


@given(data=st.data())
def test_embedding_gradient_with_repeated_ids(device, data):
    vocab, dim = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 4))
    ids = data.draw(hnp.arrays(np.int64, data.draw(shapes(max_dims=2)), elements=st.integers(0, vocab - 1)))
    ids = on_device(np.append(ids, ids.flat[0]) if ids.ndim == 1 else ids, device)  # ensure repeats in 1-D
    check_gradients(lambda w: ops.embedding(w, ids), data.draw(arrays((vocab, dim))), device=device)


def test_embedding_sums_gradients_of_repeated_ids():
    weight = leaf(np.zeros((3, 2)))
    ops.embedding(weight, np.array([[2, 0], [2, 2]])).sum().backward()
    assert weight.grad.tolist() == [[1.0, 1.0], [0.0, 0.0], [3.0, 3.0]]


def test_embedding_rejects_out_of_range_and_float_ids():
    weight = leaf(np.zeros((3, 2)))
    with pytest.raises(IndexError, match=r"\[0, 3\)"):
        ops.embedding(weight, np.array([0, 3]))
    with pytest.raises(TypeError, match="integers"):
        ops.embedding(weight, np.array([0.0]))


# ----------------------------------------------------------------------------------------------- dropout


@given(data=st.data())
def test_dropout_gradient_with_a_reseeded_generator(device, data):
    p, seed = data.draw(st.sampled_from([0.1, 0.5, 0.9])), data.draw(st.integers(0, 2**16))
    xp = module_for(device)
    # gradcheck calls fn many times; a generator re-created from the same seed inside fn draws the same mask
    # every time, which makes the function deterministic (as gradcheck requires).
    check_gradients(lambda t: ops.dropout(t, p, xp.random.default_rng(seed)), data.draw(arrays(data.draw(shapes()))),
                    device=device)


def test_dropout_zeroes_about_p_and_scales_survivors():
    x = leaf(np.ones(20_000))
    y = ops.dropout(x, 0.3, np.random.default_rng(0)).data
    assert set(np.unique(y)) == {0.0, 1 / 0.7}
    assert abs((y == 0).mean() - 0.3) < 0.02  # binomial std ≈ 0.0032, so 0.02 is > 6 std


def test_dropout_is_the_identity_in_evaluation_and_at_p_zero():
    x = leaf([1.0, 2.0])
    assert ops.dropout(x, 0.5, None, training=False) is x
    assert ops.dropout(x, 0.0, None) is x


@pytest.mark.parametrize("p", [-0.1, 1.0])
def test_dropout_rejects_p_outside_zero_one(p):
    with pytest.raises(ValueError, match="p must be in"):
        ops.dropout(leaf([1.0]), p, np.random.default_rng(0))


def test_dropout_needs_a_generator():
    with pytest.raises(ValueError, match="seeded generator"):
        ops.dropout(leaf([1.0]), 0.5, None)


# ----------------------------------------------------------------------------------------------- attention


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

