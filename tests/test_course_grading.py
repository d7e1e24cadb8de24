"""The grading tests of ``make check``: one per exercise cut from the library (minipretrain/course/catalog.py).

A backward is graded by ``check_backward``: the Function's own forward and backward run on raw float64 arrays
with a random upstream gradient and are compared with central differences (gradcheck's tolerances), so a
blank anywhere else in the library cannot fail the check, and a backward that calls autograd is refused.
The BPE merge step is graded on values worked out by hand. In the original checkout every test here passes;
in a student copy each fails until its exercise is solved.
"""
from __future__ import annotations

import numpy as np
import pytest

from minipretrain.course.grading import check_backward
from minipretrain.ops._broadcast import unbroadcast
from minipretrain.ops.activations import GeluErf, GeluTanh
from minipretrain.ops.attention import ScaledDotProductAttention
from minipretrain.ops.cross_entropy import IGNORE_INDEX, CrossEntropy
from minipretrain.ops.elementwise import Add, Mul, Sub
from minipretrain.ops.embedding import Embedding
from minipretrain.ops.layer_norm import LayerNorm
from minipretrain.ops.linalg import MatMul
from minipretrain.ops.softmax import Softmax
from minipretrain.tokenizers.merges import merge_pair

# The grader's own tolerances (gradcheck's: atol 1e-7 + rtol 1e-6 at ε = 1e-6 in float64); it returns the
# largest error, which for these O(1) values is ~1e-9: a right backward passes with a wide margin.
MARGIN = 1e-7


def normal(*shape: int, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    return np.asarray(np.random.default_rng(seed).standard_normal(shape) * scale)


# (shape of a, shape of b): equal shapes, a bias over the last axis, a size-1 axis, both sides stretched, a scalar.
BROADCASTS = [((2, 3), (2, 3)), ((2, 3, 4), (4,)), ((2, 3, 4), (3, 1)), ((5, 1), (1, 6)), ((3,), ())]


def test_unbroadcast() -> None:
    # g[i, j, k] = 12i + 4j + k, so every sum below can be done by hand.
    g = np.arange(24.0).reshape(2, 3, 4)
    assert unbroadcast(g, (2, 3, 4)) is g                                          # nothing was broadcast
    np.testing.assert_array_equal(unbroadcast(g, (4,)), [60, 66, 72, 78])        # 60 + 6k: over i and j
    np.testing.assert_array_equal(unbroadcast(g, (3, 1)), [[60], [92], [124]])   # 60 + 32j: over i and k
    np.testing.assert_array_equal(unbroadcast(g, (1, 3, 4)), [[[12, 14, 16, 18], [20, 22, 24, 26],
                                                                [28, 30, 32, 34]]])  # 12 + 4j + 2k, over i
    assert unbroadcast(g, (1, 1)).shape == (1, 1) and unbroadcast(g, (1, 1))[0, 0] == 276  # 0 + 1 + … + 23
    assert float(unbroadcast(g, ())) == 276
    h = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(unbroadcast(h, (1, 3)), [[3, 5, 7]])
    np.testing.assert_array_equal(unbroadcast(h, (2, 1)), [[3], [12]])


@pytest.mark.parametrize("function", [Add, Sub], ids=["add", "sub"])
@pytest.mark.parametrize("shapes", BROADCASTS, ids=str)
def test_add_and_sub_backward(function, shapes) -> None:
    a_shape, b_shape = shapes
    assert check_backward(function, normal(*a_shape, seed=1), normal(*b_shape, seed=2)) < MARGIN


@pytest.mark.parametrize("shapes", BROADCASTS, ids=str)
def test_mul_backward(shapes) -> None:
    a_shape, b_shape = shapes
    assert check_backward(Mul, normal(*a_shape, seed=3), normal(*b_shape, seed=4)) < MARGIN


@pytest.mark.parametrize("shapes", [
    ((3, 4), (4, 5)),              # plain
    ((2, 3, 4), (4, 5)),           # activations times a weight matrix (the 2-D fast path)
    ((2, 3, 4), (2, 4, 5)),        # batched
    ((2, 1, 3, 4), (5, 4, 2)),     # leading axes broadcast on both sides
    ((3, 4), (2, 4, 5)),           # a matrix against a batch
], ids=str)
def test_matmul_backward(shapes) -> None:
    a_shape, b_shape = shapes
    assert check_backward(MatMul, normal(*a_shape, seed=5), normal(*b_shape, seed=6)) < MARGIN


@pytest.mark.parametrize("function", [GeluTanh, GeluErf], ids=["tanh", "erf"])
def test_gelu_backward(function) -> None:
    x = normal(4, 5, seed=7, scale=2.0)  # |x| up to ~5: both tails and the curved middle
    assert check_backward(function, x) < MARGIN


@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_backward(axis) -> None:
    assert check_backward(Softmax, normal(3, 5, seed=8, scale=2.0), options={"axis": axis}) < MARGIN


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_backward(reduction) -> None:
    logits = normal(6, 5, seed=9, scale=2.0)
    targets = np.array([0, 4, IGNORE_INDEX, 2, 2, IGNORE_INDEX])  # two rows are ignored
    assert check_backward(CrossEntropy, logits, targets, wrt=(0,), options={"reduction": reduction}) < MARGIN
    nothing = np.full(6, IGNORE_INDEX)  # every row ignored: the gradient is 0, nothing is divided by 0
    assert check_backward(CrossEntropy, logits, nothing, wrt=(0,), options={"reduction": reduction}) < MARGIN


@pytest.mark.parametrize("shape", [(3, 6), (2, 3, 5)], ids=str)
def test_layer_norm_backward(shape) -> None:
    size = shape[-1]
    x, weight, bias = normal(*shape, seed=10), normal(size, seed=11), normal(size, seed=12)
    assert check_backward(LayerNorm, x, weight, bias) < MARGIN
    assert check_backward(LayerNorm, x, None, None, options={"eps": 1e-3}) < MARGIN  # no affine part


class SameDraws:
    """A generator that draws the same numbers at every call, so every forward of the finite differences
    drops the same attention probabilities (dropout's mask is then a constant of the function)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def random(self, shape, dtype=np.float64):
        return np.random.default_rng(self.seed).random(shape, dtype=dtype)


@pytest.mark.parametrize("case", [
    {"shapes": (4, 4), "options": {}},
    {"shapes": (4, 4), "options": {"causal": True}},
    {"shapes": (2, 5), "options": {"causal": True}},                       # decoding with a cache: Tq < Tk
    {"shapes": (4, 4), "options": {"scale": 0.3}, "padding": [[1, 1, 1, 0], [1, 1, 0, 0]]},
    {"shapes": (4, 4), "options": {"causal": True, "dropout_p": 0.3, "rng": SameDraws(0)}},
], ids=["full", "causal", "causal-tq<tk", "padding+scale", "causal+dropout"])
def test_attention_backward(case) -> None:
    tq, tk = case["shapes"]
    q, k, v = normal(2, 2, tq, 3, seed=13), normal(2, 2, tk, 3, seed=14), normal(2, 2, tk, 3, seed=15)
    padding = np.array(case["padding"], dtype=bool) if "padding" in case else None
    assert check_backward(ScaledDotProductAttention, q, k, v, padding, wrt=(0, 1, 2),
                          options=case["options"]) < MARGIN


@pytest.mark.parametrize("ids", [np.array([3, 0, 3]), np.array([[0, 3, 3], [6, 3, 0]])], ids=["1d", "2d"])
def test_embedding_backward(ids) -> None:
    # Repeated ids: their rows must receive the sum of every position's gradient.
    assert check_backward(Embedding, normal(7, 4, seed=16), ids) < MARGIN


def test_bpe_merge_step() -> None:
    assert merge_pair([1, 2, 3, 1, 2], (1, 2), 9) == [9, 3, 9]
    assert merge_pair([1, 1, 1], (1, 1), 9) == [9, 1]              # left to right, never overlapping
    assert merge_pair([1, 1, 1, 1], (1, 1), 9) == [9, 9]
    assert merge_pair([2, 1, 2, 1], (1, 2), 9) == [2, 9, 1]        # the order inside the pair matters
    assert merge_pair([1, 3, 2], (1, 2), 9) == [1, 3, 2]            # only adjacent symbols merge
    assert merge_pair([], (1, 2), 9) == [] and merge_pair([1], (1, 2), 9) == [1]
    assert merge_pair((1, 2), (1, 2), 9) == [9]                     # any sequence in, a list out
