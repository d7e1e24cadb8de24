"""Fused RMS norm (ops/rms_norm.py, T5's layer norm): gradients (also at tiny variance), the composed reference
(to 1e-10 of each array's largest entry, fused_checks.RTOL), values by hand, bad arguments."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import check_gradients, leaf
from fused_checks import assert_same_forward_and_backward
from minipretrain.ops.rms_norm import rms_norm, rms_norm_reference
from strategies import arrays, shapes, tiny_variance_rows


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
    # dx = r·(g - x̂·mean(g ⊙ x̂)) is a difference of terms of size r·|g| (g = dy ⊙ w) that nearly cancel when
    # |x̂| ≈ 1 (x = [1.]: dx ~ ε·g), so rounding is measured against that scale, not the tiny result.
    upstream = np.random.default_rng(0).standard_normal(shape)  # forward_and_grads' upstream gradient
    rstd = 1.0 / np.sqrt((x * x).mean(axis=-1, keepdims=True) + 1e-6)
    assert_same_forward_and_backward(rms_norm, rms_norm_reference, [x, w], device,
                                     grad_terms_scale=float(np.abs(rstd * upstream * w).max()))


def test_rms_norm_matches_its_reference_where_the_gradient_nearly_cancels():
    """The case hypothesis found (on the [cuda] variant, but the arithmetic is the host's too): one feature,
    x = w = 1, where dx = r·g·ε/(x² + ε) ≈ 1.3e-7 is all that is left of terms of size 1."""
    assert_same_forward_and_backward(rms_norm, rms_norm_reference, [np.array([1.0]), np.array([1.0])], "cpu",
                                     grad_terms_scale=1.0)


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
