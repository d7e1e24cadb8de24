"""Binary cross-entropy with logits (ops/binary_cross_entropy.py, ELECTRA's discriminator loss): gradients for
every reduction and mask, the composed reference to 1e-10 (fused_checks.RTOL), stability at ±1e4, by hand."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import check_gradients, leaf, on_device
from fused_checks import assert_same_forward_and_backward
from minipretrain.ops.binary_cross_entropy import (
    binary_cross_entropy_with_logits, binary_cross_entropy_with_logits_reference,
)
from strategies import arrays, padding_masks, shapes


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
    assert_same_forward_and_backward(lambda z_: binary_cross_entropy_with_logits(z_, y),
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
