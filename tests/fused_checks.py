"""Fused ops against their composed references: run both on the same float64 leaves and the same upstream
gradient, and require agreement to RTOL of each array's largest entry (rounding alone gives ~1e-15; a wrong
term in a backward gives O(1) differences); and the exact values the stability tests compare with."""
from __future__ import annotations

import math

import numpy as np

from conftest import assert_close, host, leaf, on_device


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


def log_softmax_exact(row):
    """log-softmax of one row of Python floats: x - (m + log Σ exp(x - m)), the sum by math.fsum."""
    m = max(row)
    lse = m + math.log(math.fsum(math.exp(x - m) for x in row))
    return [x - lse for x in row]


HUGE_LOGITS = np.array([[1e4, -1e4, 0.0, 9999.0],
                        [-1e4, -1e4, -1e4, -1e4],
                        [-1e4, 1e4, 1e4 - 30, -9990.0]])
