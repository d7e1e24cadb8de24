"""The grader of `make check` on the library's real ops: each hand-written backward passes ``check_backward``
(raw float64 arrays, a random upstream gradient, gradcheck's tolerances), so the exercises cut from these ops
will be graded fairly. Each Function is reached through the public op that uses it, so file moves do not matter."""
from __future__ import annotations

import numpy as np
import pytest

import minipretrain as mp
from minipretrain import ops
from minipretrain.course.grading import check_backward

rng = np.random.default_rng(0)


def _function_of(output: mp.Tensor) -> type:
    assert output._ctx is not None, "the public op did not record a Function"
    return output._ctx.function


def _t(*shape: int) -> mp.Tensor:
    return mp.Tensor(rng.standard_normal(shape), requires_grad=True)


CASES = {
    "add-broadcast": (lambda: ops.add(_t(2, 3), _t(3)), lambda: (rng.standard_normal((2, 3, 4)), rng.standard_normal(4)), {}),
    "mul-broadcast": (lambda: ops.mul(_t(2, 3), _t(3)), lambda: (rng.standard_normal((2, 3, 4)), rng.standard_normal((3, 1))), {}),
    "matmul-batched": (lambda: ops.matmul(_t(2, 3), _t(3, 2)), lambda: (rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 5))), {}),
    "gelu-tanh": (lambda: ops.gelu(_t(3)), lambda: (rng.standard_normal((3, 4)),), {}),
    "gelu-erf": (lambda: ops.gelu(_t(3), approximate="none"), lambda: (rng.standard_normal((3, 4)),), {}),
    "softmax": (lambda: ops.softmax(_t(2, 3)), lambda: (rng.standard_normal((3, 5)),), {}),
    "layer-norm": (lambda: ops.layer_norm(_t(2, 4), _t(4), _t(4)),
                   lambda: (rng.standard_normal((3, 6)), rng.standard_normal(6), rng.standard_normal(6)), {}),
    "attention-causal": (lambda: ops.scaled_dot_product_attention(_t(1, 1, 2, 2), _t(1, 1, 2, 2), _t(1, 1, 2, 2), causal=True),
                         lambda: tuple(rng.standard_normal((1, 2, 4, 3)) for _ in range(3)), {"causal": True}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_every_real_backward_passes_the_grader(name: str) -> None:
    make_output, make_arrays, options = CASES[name]
    assert check_backward(_function_of(make_output()), *make_arrays(), options=options) < 1e-7


def test_the_grader_checks_cross_entropy_and_embedding_with_integer_inputs_left_alone() -> None:
    cross_entropy = _function_of(ops.cross_entropy(_t(3, 4), np.array([0, 1, 2])))
    assert check_backward(cross_entropy, rng.standard_normal((6, 5)), rng.integers(0, 5, 6), wrt=(0,)) < 1e-7
    embedding = _function_of(ops.embedding(_t(5, 2), np.array([[0, 3]])))
    assert check_backward(embedding, rng.standard_normal((7, 4)), rng.integers(0, 7, (2, 3))) < 1e-7
