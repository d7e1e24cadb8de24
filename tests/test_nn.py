"""Building blocks: Module bookkeeping, state dicts, layers' math and layouts, seeded dropout."""
from __future__ import annotations

import numpy as np
import pytest

import minipretrain as mp
from minipretrain.nn import (
    Conv1D, Dropout, Embedding, LayerNorm, Linear, Module, ModuleList, Parameter, RandomSource, StateDictError,
)


class TwoLayers(Module):
    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.first = Linear(3, 4, rng=rng)
        self.norm = LayerNorm(4)
        self.blocks = ModuleList([Conv1D(4, 4, rng=rng), Conv1D(4, 2, bias=False, rng=rng)])
        self.source = RandomSource(seed)
        self.drop = Dropout(0.5, self.source)

    def forward(self, x):
        x = self.drop(self.norm(self.first(x)))
        for block in self.blocks:
            x = block(x)
        return x


def test_named_parameters_are_stable_and_dotted():
    names = [name for name, _ in TwoLayers().named_parameters()]
    assert names == ["first.weight", "first.bias", "norm.weight", "norm.bias", "blocks.0.weight", "blocks.0.bias",
                     "blocks.1.weight"]
    assert [n for n, _ in TwoLayers(seed=5).named_parameters()] == names


def test_num_parameters_counts_every_scalar_once():
    model = TwoLayers()
    assert model.num_parameters() == (3 * 4 + 4) + (4 + 4) + (4 * 4 + 4) + 4 * 2
    model.blocks[1].weight = model.blocks[0].weight  # tie the two (shapes need not fit for counting)
    assert model.num_parameters() == (3 * 4 + 4) + (4 + 4) + (4 * 4 + 4)
    assert len(model.parameters()) == 6


def test_train_eval_reach_every_module():
    model = TwoLayers()
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_zero_grad_clears_every_gradient():
    model = TwoLayers()
    model(mp.tensor(np.ones((2, 3), np.float32))).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_decay_flags_follow_gpt2_practice():
    flags = {name: p.decay for name, p in TwoLayers().named_parameters()}
    assert flags == {"first.weight": True, "first.bias": False, "norm.weight": False, "norm.bias": False,
                     "blocks.0.weight": True, "blocks.0.bias": False, "blocks.1.weight": True}
    assert Embedding(5, 3, rng=np.random.default_rng(0)).weight.decay is False


def test_linear_uses_out_by_in_layout_and_conv1d_in_by_out():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 3))
    linear = Linear(3, 4, rng=rng, dtype=np.float64)
    linear.bias.data[:] = rng.standard_normal(4)
    assert linear.weight.shape == (4, 3)
    np.testing.assert_allclose(linear(mp.Tensor(x)).numpy(), x @ linear.weight.data.T + linear.bias.data, atol=1e-14)
    conv = Conv1D(3, 4, rng=rng, dtype=np.float64)
    assert conv.weight.shape == (3, 4)
    np.testing.assert_allclose(conv(mp.Tensor(x)).numpy(), x @ conv.weight.data + conv.bias.data, atol=1e-14)


def test_linear_gradients_match_finite_differences():
    rng = np.random.default_rng(2)
    linear = Linear(3, 4, rng=rng, dtype=np.float64)
    x = mp.Tensor(rng.standard_normal((2, 5, 3)), requires_grad=True)
    mp.gradcheck(lambda x, w, b: linear(x), x, linear.weight, linear.bias)


def test_dropout_is_seeded_and_off_in_eval():
    x = mp.tensor(np.ones((4, 100)))
    first, second = TwoLayers(seed=3), TwoLayers(seed=3)
    a = first.drop(x).numpy()
    np.testing.assert_array_equal(a, second.drop(x).numpy())
    assert set(np.unique(a)) == {0.0, 2.0}  # inverted dropout: survivors scaled by 1/(1-p)
    first.source.reseed()
    np.testing.assert_array_equal(first.drop(x).numpy(), a)
    first.eval()
    assert first.drop(x) is x


def test_state_dict_round_trip():
    source, target = TwoLayers(seed=0), TwoLayers(seed=1)
    x = mp.tensor(np.random.default_rng(0).standard_normal((2, 3), np.float32))
    source.eval(), target.eval()
    target.load_state_dict(source.state_dict())
    np.testing.assert_array_equal(target(x).numpy(), source(x).numpy())
    # a copy, not an alias: changing the source afterwards leaves the target alone
    source.first.weight.data += 1
    assert not np.array_equal(target.first.weight.data, source.first.weight.data)


def test_load_state_dict_reports_every_problem_and_changes_nothing():
    model = TwoLayers()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    state = dict(TwoLayers(seed=1).state_dict())
    del state["norm.bias"]
    state["extra.weight"] = np.zeros(2)
    state["first.weight"] = np.zeros((3, 4))
    with pytest.raises(StateDictError) as error:
        model.load_state_dict(state)
    message = str(error.value)
    assert "norm.bias" in message and "extra.weight" in message and "first.weight" in message
    assert "(3, 4)" in message and "(4, 3)" in message
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_load_state_dict_non_strict_skips_missing_and_unexpected():
    model = TwoLayers()
    model.load_state_dict({"norm.weight": np.full(4, 2.0), "other": np.zeros(1)}, strict=False)
    np.testing.assert_array_equal(model.norm.weight.data, np.full(4, 2.0, dtype=np.float32))
    assert model.norm.weight.dtype == np.float32  # cast to the parameter's dtype


def test_parameter_keeps_its_constructor():
    p = Parameter(np.zeros(3, dtype=np.float32), decay=False)
    assert p.requires_grad and p.decay is False


def test_module_list_indexing():
    blocks = TwoLayers().blocks
    assert len(blocks) == 2 and blocks[-1] is blocks[1]
    with pytest.raises(IndexError):
        blocks[2]


def test_to_cpu_keeps_parameters_in_place():
    model = TwoLayers()
    params = model.parameters()
    assert model.to("cpu") is model and model.device == "cpu"
    assert all(a is b for a, b in zip(params, model.parameters()))
