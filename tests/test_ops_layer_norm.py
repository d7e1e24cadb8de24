"""Fused layer norm (ops/layer_norm.py): gradients (also at tiny variance), normalisation, the composed reference."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import assert_close, check_gradients, leaf
from fused_checks import assert_same_forward_and_backward
from minipretrain import ops
from minipretrain.ops.layer_norm import layer_norm_reference
from strategies import arrays, shapes, tiny_variance_rows


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
