"""``minipretrain.gradcheck`` itself: it must catch wrong backwards, say where, and refuse what it cannot check."""
from __future__ import annotations

import numpy as np
import pytest

import minipretrain as mp
from conftest import leaf
from minipretrain.autograd import Function


class SquareWithBug(Function):
    """y = x², with a backward that is wrong only at flat position ``bad`` (returns 2x + 0.01 there)."""

    bad = 5

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        grad_x = 2 * x * grad
        grad_x.reshape(-1)[SquareWithBug.bad] += 0.01
        return (grad_x,)


class SwappedProduct(Function):
    """y = a·b with the two gradients swapped: dL/da = a·g (should be b·g). Right only when a == b."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        return a * grad, b * grad


def test_a_correct_op_passes_with_a_report_of_every_input():
    a, b = leaf(np.linspace(-1, 1, 6).reshape(2, 3)), leaf([0.5, -2.0, 1.5])
    report = mp.gradcheck(lambda x, y: x * y, a, b)
    assert report.passed and [r.index for r in report.inputs] == [0, 1]
    assert [r.checked_elements for r in report.inputs] == [6, 3]
    assert all(r.max_rel_error < 1e-6 for r in report.inputs)
    assert "gradcheck passed" in str(report) and "input 1 (3,)" in str(report)
    assert a.grad is None and b.grad is None  # gradcheck leaves no gradients behind


def test_a_wrong_backward_is_caught_naming_the_input_and_element():
    x = leaf(np.arange(1.0, 9.0).reshape(2, 4))
    with pytest.raises(mp.GradcheckError, match=r"input 0 \(shape \(2, 4\)\) at element \(1, 1\)"):
        mp.gradcheck(SquareWithBug.apply, x)


def test_swapped_gradients_are_caught_on_the_second_input():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 5.0])
    report = mp.gradcheck(SwappedProduct.apply, a, b, raise_on_failure=False)
    assert not report.passed
    assert report.inputs[0].max_abs_error > 0.1 and report.inputs[1].max_abs_error > 0.1


def test_an_error_smaller_than_the_tolerance_is_still_reported():
    SquareWithBug.bad = 0
    try:
        report = mp.gradcheck(SquareWithBug.apply, leaf([1.0, 2.0]), atol=1.0, raise_on_failure=False)
    finally:
        SquareWithBug.bad = 5
    assert report.passed
    assert report.inputs[0].worst_element == (0,) and report.inputs[0].max_abs_error == pytest.approx(0.01, rel=1e-6)


def test_large_inputs_are_subsampled_deterministically():
    values = np.random.default_rng(0).standard_normal(500)
    first = mp.gradcheck(lambda t: t.tanh(), leaf(values), max_elements=40)
    second = mp.gradcheck(lambda t: t.tanh(), leaf(values), max_elements=40)
    other_seed = mp.gradcheck(lambda t: t.tanh(), leaf(values), max_elements=40, seed=1)
    assert first.inputs[0].checked_elements == 40
    assert (first.inputs[0].worst_element, first.inputs[0].max_abs_error) == \
        (second.inputs[0].worst_element, second.inputs[0].max_abs_error)
    assert other_seed.inputs[0].worst_element != first.inputs[0].worst_element


def test_subsampling_still_catches_a_backward_that_is_wrong_everywhere():
    x = leaf(np.random.default_rng(1).standard_normal(300))
    with pytest.raises(mp.GradcheckError):
        mp.gradcheck(lambda t: SwappedProduct.apply(t, t * 2.0), x, max_elements=10)


def test_strided_inputs_are_perturbed_in_place():
    # A transposed view is not contiguous; perturbing a reshape(-1) copy of it would leave the input unchanged.
    x = mp.Tensor(np.arange(1.0, 7.0).reshape(2, 3).T, requires_grad=True)
    assert not x.data.flags.c_contiguous
    report = mp.gradcheck(lambda t: t * t, x)
    assert report.passed and report.inputs[0].max_abs_error < 1e-7


def test_float32_inputs_are_refused():
    with pytest.raises(TypeError, match="input 0 has dtype float32; finite differences need float64"):
        mp.gradcheck(lambda t: t * 2.0, leaf([1.0], dtype=np.float32))


def test_inputs_without_requires_grad_are_refused():
    with pytest.raises(ValueError, match="no input has requires_grad=True"):
        mp.gradcheck(lambda t: t * 2.0, leaf([1.0], requires_grad=False))


def test_a_function_that_does_not_depend_on_the_inputs_is_refused():
    constant = leaf([1.0], requires_grad=False)
    with pytest.raises(ValueError, match="must return a Tensor that depends on the checked inputs"):
        mp.gradcheck(lambda t: constant * 2.0, leaf([1.0]))


def test_constant_inputs_are_passed_through_unchecked():
    scale = leaf([2.0, 3.0], requires_grad=False)
    report = mp.gradcheck(lambda t, s: t * s, leaf([1.0, -1.0]), scale)
    assert [r.index for r in report.inputs] == [0]
