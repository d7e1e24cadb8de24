"""AdamW, SGD, parameter groups, state dicts and gradient clipping.

Hand-computed examples are in float64 and compared to 1e-12 relative: the formulas are evaluated in the
same order, so only a few ulps of rounding (≈1e-16 each) separate the two sides. The optional comparisons
with PyTorch (skipped when torch is absent) use 1e-10: the same arithmetic, possibly reordered, over a few
steps with O(1) gradients, where Adam's division by √v̂ + ε does not amplify rounding.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from minipretrain.autograd.tensor import Tensor
from minipretrain.backend import cupy_available
from minipretrain.nn.parameter import Parameter
from minipretrain.optim import SGD, AdamW, OptimizerStateError, clip_grad_norm, param_groups

HAND_RTOL = 1e-12
TORCH_RTOL, TORCH_ATOL = 1e-10, 1e-12


def scalar_parameter(value: float, decay: bool = True) -> Parameter:
    return Parameter(np.array([value], dtype=np.float64), decay=decay)


def set_grad(param: Parameter, value) -> None:
    param.grad = np.asarray(value, dtype=param.data.dtype).reshape(param.shape)


class ToyModel:
    """Parameters like a real model's: a weight matrix (decayed), a bias, a LayerNorm gain, a tied embedding."""

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.weight = Parameter(rng.normal(size=(4, 3)))
        self.bias = Parameter(rng.normal(size=3), decay=False)
        self.gain = Parameter(np.ones(3), decay=False)
        self.embedding = Parameter(rng.normal(size=(5, 4)), decay=False)

    def parameters(self) -> list[Parameter]:
        # The tied LM head is the embedding again: listed twice, it must be updated once.
        return [self.embedding, self.weight, self.bias, self.gain, self.embedding]


# --------------------------------------------------------------------------- AdamW by hand
def test_adamw_matches_a_hand_computed_two_step_example():
    param = scalar_parameter(1.0)
    data_before = param.data
    optimizer = AdamW([param], lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)

    # Step 1, g = 0.5:  m = 0.05, v = 0.00025, m̂ = 0.05/0.1 = 0.5, v̂ = 0.00025/0.001 = 0.25
    #   θ = 1·(1 − 0.1·0.01) − 0.1·0.5/(√0.25 + 1e-8) = 0.999 − 0.099999998 = 0.899000002
    set_grad(param, 0.5)
    optimizer.step()
    assert param.data[0] == pytest.approx(0.899000002, rel=HAND_RTOL)

    # Step 2, g = −0.25:  m = 0.9·0.05 + 0.1·(−0.25) = 0.02,  v = 0.999·0.00025 + 0.001·0.0625 = 0.00031225
    #   m̂ = 0.02/(1 − 0.9²) = 2/19,  v̂ = 0.00031225/(1 − 0.999²) = 0.00031225/0.001999
    #   θ = 0.899000002·0.999 − 0.1·(2/19)/(√v̂ + 1e-8)
    set_grad(param, -0.25)
    optimizer.step()
    v_hat = 0.00031225 / 0.001999
    expected = 0.899000002 * 0.999 - 0.1 * (2 / 19) / (math.sqrt(v_hat) + 1e-8)
    assert expected == pytest.approx(0.8714672987058463, rel=HAND_RTOL)
    assert param.data[0] == pytest.approx(expected, rel=HAND_RTOL)
    state = optimizer.state[id(param)]
    assert state["step"] == 2
    assert state["exp_avg"][0] == pytest.approx(0.02, rel=HAND_RTOL)
    assert state["exp_avg_sq"][0] == pytest.approx(0.00031225, rel=HAND_RTOL)
    assert param.data is data_before  # updated in place


def test_adamw_weight_decay_is_decoupled_from_the_gradient():
    # With a zero gradient Adam's step is 0/(0 + ε) = 0, so only the decay acts: θ_t = θ_0·(1 − ηλ)^t.
    # (L2-regularised Adam would instead move θ by ≈ η per step, the decay gradient normalised by √v̂.)
    decayed, exempt = scalar_parameter(2.0), scalar_parameter(2.0, decay=False)
    optimizer = AdamW(param_groups([decayed, exempt], weight_decay=0.1), lr=0.05)
    for _ in range(3):
        set_grad(decayed, 0.0)
        set_grad(exempt, 0.0)
        optimizer.step()
    assert decayed.data[0] == pytest.approx(2.0 * (1 - 0.05 * 0.1) ** 3, rel=HAND_RTOL)
    assert exempt.data[0] == 2.0


# --------------------------------------------------------------------------- SGD by hand
@pytest.mark.parametrize("nesterov, expected", [
    # momentum: b₁ = 0.5, θ₁ = 1 − 0.1·0.5 = 0.95;  b₂ = 0.9·0.5 − 0.25 = 0.2, θ₂ = 0.95 − 0.1·0.2 = 0.93
    (False, (0.95, 0.93)),
    # Nesterov: d₁ = 0.5 + 0.9·0.5 = 0.95, θ₁ = 0.905;  d₂ = −0.25 + 0.9·0.2 = −0.07, θ₂ = 0.905 + 0.007 = 0.912
    (True, (0.905, 0.912)),
])
def test_sgd_momentum_by_hand(nesterov, expected):
    param = scalar_parameter(1.0)
    optimizer = SGD([param], lr=0.1, momentum=0.9, nesterov=nesterov)
    for grad, value in zip((0.5, -0.25), expected):
        set_grad(param, grad)
        optimizer.step()
        assert param.data[0] == pytest.approx(value, rel=HAND_RTOL)


def test_sgd_weight_decay_is_l2_on_the_gradient():
    param = scalar_parameter(2.0)
    set_grad(param, 0.5)
    SGD([param], lr=0.1, weight_decay=0.01).step()
    assert param.data[0] == pytest.approx(2.0 - 0.1 * (0.5 + 0.01 * 2.0), rel=HAND_RTOL)


# --------------------------------------------------------------------------- groups and bookkeeping
def test_param_groups_exempt_biases_norms_and_embeddings_and_dedupe_tied_weights():
    model = ToyModel()
    groups = param_groups(model, weight_decay=0.1)
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0]
    assert [id(p) for p in groups[0]["params"]] == [id(model.weight)]
    assert [id(p) for p in groups[1]["params"]] == [id(model.embedding), id(model.bias), id(model.gain)]
    # Plain Tensors have no flag: matrices decay, vectors do not (nanoGPT's rule).
    matrix, vector = Tensor(np.ones((2, 2)), requires_grad=True), Tensor(np.ones(2), requires_grad=True)
    plain = param_groups([matrix, vector], weight_decay=0.1)
    assert [[id(p) for p in g["params"]] for g in plain] == [[id(matrix)], [id(vector)]]
    assert len(param_groups([model.bias], weight_decay=0.1)) == 1  # empty groups are left out


def test_a_tied_parameter_is_updated_once():
    model = ToyModel()
    optimizer = SGD(model, lr=0.5)
    assert len(optimizer.params) == 4
    before = model.embedding.data.copy()
    model.embedding.grad = np.ones_like(before)
    optimizer.step()
    np.testing.assert_array_equal(model.embedding.data, before - 0.5)


@pytest.mark.parametrize("build, message", [
    (lambda p: AdamW([{"params": [p]}, {"params": [p]}], lr=0.1), "more than one parameter group"),
    (lambda p: AdamW([], lr=0.1), "empty"),
    (lambda p: AdamW([{"params": [p], "momentum": 0.9}], lr=0.1), "unknown hyperparameters"),
    (lambda p: AdamW([p], lr=0.1, betas=(0.9, 1.0)), "betas"),
    (lambda p: AdamW([p], lr=-1.0), "lr"),
    (lambda p: SGD([p], lr=0.1, nesterov=True), "nesterov"),
    (lambda p: SGD([p], lr=0.1, momentum=1.5), "momentum"),
    (lambda p: SGD([Tensor(np.ones(2))], lr=0.1), "does not require a gradient"),
])
def test_bad_optimizer_settings_are_clear_errors(build, message):
    with pytest.raises(ValueError, match=message):
        build(scalar_parameter(1.0))


def test_parameters_without_gradient_are_skipped_and_keep_their_own_step_count():
    used, unused = scalar_parameter(1.0), scalar_parameter(3.0)
    optimizer = AdamW([used, unused], lr=0.1)
    set_grad(used, 1.0)
    optimizer.step()
    assert unused.data[0] == 3.0 and id(unused) not in optimizer.state
    set_grad(unused, 1.0)
    optimizer.step()
    assert optimizer.state[id(used)]["step"] == 2
    assert optimizer.state[id(unused)]["step"] == 1  # its first step: full bias correction, a step of ≈ lr
    assert unused.data[0] == pytest.approx(3.0 * (1 - 0.1 * 0.01) - 0.1 * 1.0 / (1.0 + 1e-8), rel=HAND_RTOL)


def test_zero_grad_and_learning_rate_setter():
    model = ToyModel()
    optimizer = AdamW(param_groups(model, 0.1), lr=1e-3)
    for p in optimizer.params:
        p.grad = np.ones_like(p.data)
    optimizer.zero_grad()
    assert all(p.grad is None for p in optimizer.params)
    optimizer.lr = 5e-4
    assert optimizer.lr == 5e-4 and all(g["lr"] == 5e-4 for g in optimizer.param_groups)
    with pytest.raises(ValueError, match="lr"):
        optimizer.lr = -1.0


# --------------------------------------------------------------------------- state dicts
def run_steps(optimizer, params, steps: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        for p in params:
            p.grad = rng.normal(size=p.shape)
        optimizer.step()


@pytest.mark.parametrize("make_optimizer", [
    lambda model: AdamW(param_groups(model, 0.1), lr=1e-2, betas=(0.8, 0.95)),
    lambda model: SGD(param_groups(model, 0.1), lr=1e-2, momentum=0.9, nesterov=True),
])
def test_state_dict_survives_npz_and_resumes_identically(tmp_path, make_optimizer):
    model = ToyModel()
    optimizer = make_optimizer(model)
    run_steps(optimizer, optimizer.params, steps=3, seed=1)
    optimizer.lr = 3e-3
    np.savez(tmp_path / "optimizer.npz", **optimizer.state_dict())

    resumed = make_optimizer(ToyModel())
    for source, target in zip(optimizer.params, resumed.params):  # as if the model checkpoint were loaded
        target.data[...] = source.data
    with np.load(tmp_path / "optimizer.npz") as saved:
        resumed.load_state_dict(dict(saved))
    assert resumed.lr == 3e-3

    run_steps(optimizer, optimizer.params, steps=2, seed=2)
    run_steps(resumed, resumed.params, steps=2, seed=2)
    for a, b in zip(optimizer.params, resumed.params):
        np.testing.assert_array_equal(a.data, b.data)


def test_state_dict_holds_only_host_arrays_and_scalars():
    optimizer = AdamW(param_groups(ToyModel(), 0.1), lr=1e-3)
    run_steps(optimizer, optimizer.params, steps=1, seed=0)
    state = optimizer.state_dict()
    assert all(isinstance(v, (np.ndarray, int, float, str, bool)) for v in state.values())
    assert state["state.0.exp_avg"].shape == (4, 3)  # parameter 0: the first of the decayed group, the weight


def test_loading_a_mismatched_state_dict_is_a_clear_error():
    model = ToyModel()
    adamw = AdamW(param_groups(model, 0.1), lr=1e-3)
    run_steps(adamw, adamw.params, steps=1, seed=0)
    saved = adamw.state_dict()
    with pytest.raises(OptimizerStateError, match="belongs to 'AdamW', not SGD"):
        SGD(param_groups(model, 0.1), lr=1e-3).load_state_dict(saved)
    with pytest.raises(OptimizerStateError, match="parameter groups"):
        AdamW(model, lr=1e-3).load_state_dict(saved)
    with pytest.raises(OptimizerStateError, match="parameters"):
        AdamW([{"params": [model.weight]}, {"params": [model.bias]}], lr=1e-3).load_state_dict(saved)
    other = ToyModel()
    other.weight = Parameter(np.zeros((4, 7)))
    with pytest.raises(OptimizerStateError, match=r"shape \(4, 3\), the parameter \(4, 7\)"):
        AdamW(param_groups(other, 0.1), lr=1e-3).load_state_dict(saved)


# --------------------------------------------------------------------------- gradient clipping
def test_clip_grad_norm_returns_the_norm_before_clipping_and_scales_to_max_norm():
    a, b, no_grad = Parameter(np.zeros(2)), Parameter(np.zeros(1)), Parameter(np.zeros(3))
    a.grad, b.grad = np.array([3.0, 4.0]), np.array([12.0])  # ‖g‖ = √(9 + 16 + 144) = 13
    norm = clip_grad_norm([a, b, no_grad], max_norm=6.5)
    assert norm == pytest.approx(13.0, rel=HAND_RTOL)
    scale = 6.5 / (13.0 + 1e-6)
    np.testing.assert_allclose(a.grad, [3.0 * scale, 4.0 * scale], rtol=HAND_RTOL)
    np.testing.assert_allclose(b.grad, [12.0 * scale], rtol=HAND_RTOL)
    assert no_grad.grad is None


def test_clip_grad_norm_leaves_small_gradients_alone():
    p = Parameter(np.zeros(2))
    p.grad = np.array([0.3, 0.4])
    grad = p.grad
    assert clip_grad_norm([p], max_norm=1.0) == pytest.approx(0.5, rel=HAND_RTOL)
    assert p.grad is grad and np.array_equal(grad, [0.3, 0.4])
    assert clip_grad_norm([Parameter(np.zeros(2))], max_norm=1.0) == 0.0


def test_clip_grad_norm_reports_a_non_finite_norm_without_touching_gradients():
    p = Parameter(np.zeros(2))
    p.grad = np.array([np.inf, 1.0])
    assert math.isinf(clip_grad_norm([p], max_norm=1.0))
    np.testing.assert_array_equal(p.grad, [np.inf, 1.0])
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm([p], max_norm=0.0)


def test_clip_grad_norm_scales_shared_gradient_arrays_once():
    # The engine may give two leaves the same gradient array; each must be scaled exactly once.
    a, b = Parameter(np.zeros(2)), Parameter(np.zeros(2))
    shared = np.array([3.0, 4.0])
    a.grad = b.grad = shared  # ‖g‖ = √(2·25)
    norm = clip_grad_norm([a, b], max_norm=1.0)
    assert norm == pytest.approx(math.sqrt(50.0), rel=HAND_RTOL)
    np.testing.assert_allclose(a.grad, shared / (norm + 1e-6), rtol=HAND_RTOL)
    np.testing.assert_allclose(b.grad, shared / (norm + 1e-6), rtol=HAND_RTOL)


# --------------------------------------------------------------------------- against PyTorch (optional)
def torch_twin(model: ToyModel):
    torch = pytest.importorskip("torch")
    return {name: torch.tensor(getattr(model, name).data.copy(), dtype=torch.float64, requires_grad=True)
            for name in ("weight", "bias", "gain", "embedding")}


@pytest.mark.reference
@pytest.mark.parametrize("kind, settings", [
    ("adamw", {"betas": (0.9, 0.95), "eps": 1e-8}),
    ("adamw", {"betas": (0.8, 0.999), "eps": 1e-6}),
    ("sgd", {"momentum": 0.9, "nesterov": False}),
    ("sgd", {"momentum": 0.8, "nesterov": True}),
    ("sgd", {"momentum": 0.0, "nesterov": False}),
])
def test_matches_torch_over_several_steps(kind, settings):
    torch = pytest.importorskip("torch")
    model = ToyModel(seed=3)
    twin = torch_twin(model)
    ours_groups = [{"params": [model.weight, model.embedding], "weight_decay": 0.1},
                   {"params": [model.bias, model.gain], "weight_decay": 0.0}]
    torch_groups = [{"params": [twin["weight"], twin["embedding"]], "weight_decay": 0.1},
                    {"params": [twin["bias"], twin["gain"]], "weight_decay": 0.0}]
    if kind == "adamw":
        ours, theirs = AdamW(ours_groups, lr=1e-2, **settings), torch.optim.AdamW(torch_groups, lr=1e-2, **settings)
    else:
        ours, theirs = SGD(ours_groups, lr=1e-2, **settings), torch.optim.SGD(torch_groups, lr=1e-2, **settings)
    rng = np.random.default_rng(0)
    names = ("weight", "bias", "gain", "embedding")
    for step in range(8):
        lr = 1e-2 * (0.7**step)  # a changing learning rate, as under a schedule
        ours.lr = lr
        for group in theirs.param_groups:
            group["lr"] = lr
        for name in names:
            if name == "gain" and step < 3:  # no gradient for a while: skipped by both, own step count
                getattr(model, name).grad = None
                twin[name].grad = None
                continue
            grad = rng.normal(size=getattr(model, name).shape)
            getattr(model, name).grad = grad
            twin[name].grad = torch.tensor(grad, dtype=torch.float64)
        ours.step()
        theirs.step()
        for name in names:
            np.testing.assert_allclose(getattr(model, name).data, twin[name].detach().numpy(),
                                       rtol=TORCH_RTOL, atol=TORCH_ATOL, err_msg=f"{name} after step {step}")


# --------------------------------------------------------------------------- GPU (optional)
@pytest.mark.gpu
@pytest.mark.skipif(not cupy_available(), reason="needs CuPy and a CUDA GPU")
def test_adamw_and_clipping_on_the_gpu_match_numpy():  # pragma: no cover - needs a GPU
    import cupy

    host, device = ToyModel(seed=5), ToyModel(seed=5)
    for p in device.parameters():
        p.data = cupy.asarray(p.data)
    optimizers = [AdamW(param_groups(m, 0.1), lr=1e-2) for m in (host, device)]
    rng = np.random.default_rng(0)
    for _ in range(3):
        grads = [rng.normal(size=p.shape) * 10 for p in optimizers[0].params]
        for p, g in zip(optimizers[0].params, grads):
            p.grad = g
        for p, g in zip(optimizers[1].params, grads):
            p.grad = cupy.asarray(g)
        norms = [clip_grad_norm(m, 1.0) for m in (host, device)]
        assert norms[0] == pytest.approx(norms[1], rel=1e-12)
        for optimizer in optimizers:
            optimizer.step()
    state = optimizers[1].state_dict()
    assert all(not type(v).__module__.startswith("cupy") for v in state.values())
    for a, b in zip(optimizers[0].params, optimizers[1].params):
        np.testing.assert_allclose(a.data, cupy.asnumpy(b.data), rtol=1e-12)
    optimizers[1].load_state_dict(state)
    assert isinstance(optimizers[1].state[id(device.weight)]["exp_avg"], cupy.ndarray)
