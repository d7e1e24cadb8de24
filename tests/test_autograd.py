"""Engine semantics: graph shapes, accumulation, graph release, no_grad, dtypes, devices and error messages."""
from __future__ import annotations

import numpy as np
import pytest

import minipretrain as mp
from conftest import NEEDS_CUDA, assert_close, leaf
from minipretrain import ops
from minipretrain.autograd import Function, GraphFreedError
from minipretrain.backend import DeviceError, check_device, cupy_available

# ----------------------------------------------------------------------------------------------- graph shapes


def test_diamond_graph_sums_both_paths():
    # x feeds a and b, which meet again in y = a·b: dy/dx = b·da/dx + a·db/dx.
    x = leaf([1.5, -2.0])
    a, b = x * 3.0, x.exp()
    (a * b).sum().backward()
    expected = 3.0 * np.exp([1.5, -2.0]) + 3.0 * np.array([1.5, -2.0]) * np.exp([1.5, -2.0])
    assert_close(x.grad, expected, rtol=1e-15)


@pytest.mark.parametrize("build, derivative", [
    (lambda x: x * x, lambda v: 2 * v),
    (lambda x: x + x, lambda v: np.full_like(v, 2.0)),
    (lambda x: x * x * x - x, lambda v: 3 * v * v - 1),
], ids=["x*x", "x+x", "x^3-x"])
def test_reused_tensor_receives_the_sum_of_its_gradients(build, derivative):
    values = np.array([0.5, -1.25, 3.0])
    x = leaf(values)
    build(x).sum().backward()
    assert_close(x.grad, derivative(values), rtol=1e-15)


def test_gradients_accumulate_across_two_backward_calls_on_leaves():
    x, w = leaf([1.0, 2.0]), leaf([3.0, -1.0])
    (x * w).sum().backward()
    (x * w * 2.0).sum().backward()
    assert x.grad.tolist() == [9.0, -3.0] and w.grad.tolist() == [3.0, 6.0]
    x.zero_grad()
    assert x.grad is None


def test_a_chain_of_10000_ops_backpropagates_without_recursion_error():
    x = leaf([1.0])
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    assert_close(x.grad, np.array([1.0001**10_000]), rtol=1e-10)


def test_branches_that_do_not_need_gradients_are_skipped():
    x, constant = leaf([2.0]), leaf([5.0], requires_grad=False)
    y = x * constant + constant.exp()
    y.sum().backward()
    assert x.grad.tolist() == [5.0] and constant.grad is None


def test_backward_checks_the_number_and_shapes_of_gradients_a_function_returns():
    class TooMany(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, grad):
            return grad, grad

    class WrongShape(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, grad):
            return grad[:1]

    with pytest.raises(RuntimeError, match="returned 2 gradients for 1 inputs"):
        TooMany.apply(leaf([1.0, 2.0])).sum().backward()
    with pytest.raises(RuntimeError, match=r"WrongShape.backward returned a gradient of shape \(1,\) for an input of "
                                           r"shape \(2,\)"):
        WrongShape.apply(leaf([1.0, 2.0])).sum().backward()


# ----------------------------------------------------------------------------------------------- no_grad, release


def test_no_grad_builds_no_graph_and_restores_the_previous_mode():
    x = leaf([1.0, 2.0])
    assert mp.is_grad_enabled()
    with mp.no_grad():
        assert not mp.is_grad_enabled()
        y = (x * 2.0).sum()
    assert mp.is_grad_enabled()
    assert not y.requires_grad and y._ctx is None and y.is_leaf
    with pytest.raises(RuntimeError, match="does not require a gradient"):
        y.backward()


def test_no_grad_restores_the_mode_after_an_exception():
    with pytest.raises(ZeroDivisionError), mp.no_grad():
        1 / 0
    assert mp.is_grad_enabled()


def test_backward_releases_saved_buffers_and_a_second_backward_explains_itself():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    mul_ctx = y._ctx.inputs[0]._ctx
    assert mul_ctx.saved  # forward saved both factors
    y.backward()
    assert mul_ctx.freed and mul_ctx.inputs == () and mul_ctx._saved == ()
    with pytest.raises(GraphFreedError, match="retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.tolist() == [4.0, 8.0]


def test_retain_grad_keeps_an_intermediate_gradient_and_plain_intermediates_do_not():
    x = leaf([1.0, -2.0])
    hidden = (x * 3.0).retain_grad()
    other = hidden.exp()
    (other * 2.0).sum().backward()
    assert_close(hidden.grad, 2.0 * np.exp([3.0, -6.0]), rtol=1e-15)
    assert other.grad is None
    assert not hidden.is_leaf and x.is_leaf


# ----------------------------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved_through_forward_and_backward(dtype):
    rng = np.random.default_rng(0)
    x = leaf(rng.standard_normal((3, 4)), dtype=dtype)
    w = leaf(rng.standard_normal((4, 5)), dtype=dtype)
    ln_weight = leaf(np.ones(5), dtype=dtype)
    h = ops.layer_norm(ops.gelu(x @ w), ln_weight)
    h = ops.softmax(h).max(axis=0) + h.var(axis=0) + h.mean(axis=0) + (h**2).sqrt().sum(axis=0) / 2.0 - 1.0
    loss = ops.cross_entropy(h.reshape(1, 5), np.array([2]))
    assert loss.dtype == dtype
    loss.backward()
    for t in (x, w, ln_weight):
        assert t.grad.dtype == dtype, f"gradient dtype {t.grad.dtype} for a {np.dtype(dtype)} input"


def test_python_scalars_do_not_upcast_float32():
    x = leaf([1.0, 2.0], dtype=np.float32)
    for y in (x + 1.5, 2.5 * x, x - 1, 1 - x, x / 3.0, 3.0 / x, x**2.0):
        assert y.dtype == np.float32


def test_tensor_defaults_python_numbers_to_float32_and_keeps_array_dtypes():
    assert mp.tensor([1.0, 2.0]).dtype == np.float32
    assert mp.tensor(np.array([1.0])).dtype == np.float64
    assert mp.tensor(np.array([1, 2])).dtype.kind == "i"


def test_integer_tensors_refuse_requires_grad():
    with pytest.raises(TypeError, match="only floating tensors"):
        mp.tensor(np.array([1, 2]), requires_grad=True)
    with pytest.raises(TypeError, match="only floating tensors"):
        mp.tensor(np.array([1, 2])).requires_grad_()
    assert mp.tensor([1.0]).requires_grad_().requires_grad


# ----------------------------------------------------------------------------------------------- errors


def test_backward_on_a_non_scalar_needs_a_gradient():
    y = leaf([1.0, 2.0]) * 2.0
    with pytest.raises(RuntimeError, match=r"shape \(2,\). Pass grad="):
        y.backward()
    with pytest.raises(ValueError, match=r"grad has shape \(3,\), but the tensor has shape \(2,\)"):
        y.backward(np.ones(3))


def test_shape_mismatch_names_the_op_and_both_shapes():
    with pytest.raises(ValueError, match=r"MatMul: inner dimensions differ.*\(2, 3\), \(4, 5\)"):
        leaf(np.ones((2, 3))) @ leaf(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"^Add: .*\(2, 3\), \(4,\)"):
        leaf(np.ones((2, 3))) + leaf(np.ones(4))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        ops.matmul(leaf(np.ones(3)), leaf(np.ones((3, 2))))


def test_unknown_devices_are_named_in_the_error():
    with pytest.raises(DeviceError, match=r"unknown device 'tpu'; choose one of \('cpu', 'cuda'\)"):
        check_device("tpu")
    assert check_device("CUDA:1") == "cuda" and check_device("cpu") == "cpu"
    with pytest.raises(DeviceError, match="unknown device"):
        leaf([1.0]).to("metal")


@pytest.mark.skipif(cupy_available(), reason="only meaningful where CuPy is absent")
def test_asking_for_cuda_without_cupy_says_how_to_install_it():
    with pytest.raises(DeviceError, match=r"pip install 'minipretrain\[gpu\]'"):
        mp.tensor([1.0], device="cuda")
    with pytest.raises(DeviceError, match="CuPy"):
        leaf([1.0]).to("cuda")


def test_default_device_comes_from_the_environment(monkeypatch):
    from minipretrain.backend import default_device

    monkeypatch.setenv("MINIPRETRAIN_DEVICE", "cpu")
    assert default_device() == "cpu"
    monkeypatch.setenv("MINIPRETRAIN_DEVICE", "npu")
    with pytest.raises(DeviceError, match="unknown device 'npu'"):
        default_device()


@pytest.mark.parametrize("device", [pytest.param("cuda", marks=NEEDS_CUDA)])
def test_mixing_devices_is_an_error_naming_both(device):
    a, b = leaf([1.0], "cpu"), leaf([1.0], device)
    with pytest.raises(DeviceError, match=r"different devices \(\(1,\) on cpu, \(1,\) on cuda\)"):
        a + b


@pytest.mark.parametrize("device", [pytest.param("cuda", marks=NEEDS_CUDA)])
def test_to_cuda_and_back_keeps_values_and_grad_flag(device):
    x = leaf([1.0, 2.0])
    on_gpu = x.to(device)
    assert on_gpu.device == "cuda" and on_gpu.requires_grad and "device='cuda'" in repr(on_gpu)
    back = on_gpu.to("cpu")
    assert back.device == "cpu" and back.numpy().tolist() == [1.0, 2.0]


# ----------------------------------------------------------------------------------------------- small methods


def test_detach_shares_values_but_cuts_the_graph():
    x = leaf([1.0, 2.0])
    y = (x * 2.0).detach()
    assert not y.requires_grad and y.is_leaf and y.numpy().tolist() == [2.0, 4.0]
    (y * x).sum().backward()
    assert x.grad.tolist() == [2.0, 4.0]  # only the direct path: nothing flows through the detached copy


def test_to_cpu_returns_the_same_tensor_and_astype_copies():
    x = leaf([1.0, 2.0])
    assert x.to("cpu") is x and x.device == "cpu"
    y = x.astype(np.float32)
    assert y.dtype == np.float32 and y.requires_grad and y.is_leaf


def test_item_numpy_len_repr_and_shape_facts():
    x = leaf([[1.5, 2.0, 3.0]])
    assert x.sum().item() == 6.5 and isinstance(x.sum().item(), float)
    with pytest.raises(ValueError, match=r"one element, this one has shape \(1, 3\)"):
        x.item()
    assert len(x) == 1 and x.shape == (1, 3) and x.ndim == 2 and x.size == 3
    assert repr(x) == "Tensor(array([[1.5, 2. , 3. ]]), requires_grad=True)"
    assert repr(mp.tensor([1.0])) == "Tensor(array([1.], dtype=float32))"
    assert isinstance(x.numpy(), np.ndarray)


def test_tensor_methods_are_the_ops():
    rng = np.random.default_rng(1)
    values = rng.uniform(0.5, 2.0, (2, 3))
    x = leaf(values)
    pairs = [
        (x.exp(), np.exp(values)), (x.log(), np.log(values)), (x.sqrt(), np.sqrt(values)),
        (x.tanh(), np.tanh(values)), ((-x).relu(), np.zeros_like(values)), (x.transpose(), values.T),
        (x.permute(1, 0), values.T), (x.reshape(3, 2), values.reshape(3, 2)), (x[0], values[0]),
        (x.softmax(), np.exp(values) / np.exp(values).sum(-1, keepdims=True)),
        (x.log_softmax(), values - np.log(np.exp(values).sum(-1, keepdims=True))),
        (2.0 - x, 2.0 - values), (values @ x.T, values @ values.T), (x @ values.T, values @ values.T),
        (x.max(axis=1), values.max(axis=1)),
    ]
    for got, expected in pairs:
        assert_close(got, expected, rtol=1e-14)


def test_tensor_accepts_a_tensor_and_an_explicit_dtype():
    x = mp.Tensor(mp.tensor([1.0, 2.0]), dtype=np.float64)
    assert x.dtype == np.float64 and x.numpy().tolist() == [1.0, 2.0]


def test_public_example_from_the_package_docstring():
    x = mp.tensor([[1.0, 2.0]], requires_grad=True)
    (x * x).sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.tolist() == [[2.0, 4.0]]


def test_a_backward_returning_none_stops_the_gradient_there():
    class StopGradient(Function):
        """y = x in forward; no gradient flows back (backward returns None)."""

        @staticmethod
        def forward(ctx, x):
            return x.copy()

        @staticmethod
        def backward(ctx, grad):
            return (None,)

    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    hidden = x * 2.0
    (StopGradient.apply(hidden) * w).sum().backward()
    assert x.grad is None and hidden.grad is None
    assert w.grad.tolist() == [2.0, 4.0]
