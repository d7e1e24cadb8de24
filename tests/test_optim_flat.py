"""The flat parameter/gradient buffer and FlatAdamW: views stay views, and the updates are AdamW's exactly.

FlatAdamW performs AdamW's elementwise operations with the same operands in the same order, only over a
group's contiguous slice and into scratch buffers, and the flat clipping sums ‖g‖² segment by segment in
clip_grad_norm's order, so parameters must agree to the bit (``array_equal``), with clipping too. (Clipping
over the model's parameter order instead of the optimizer's adds the same numbers in another order: a
last-ulp difference in the norm, which Adam then carries into ~1e-14 relative differences of small weights.)
"""
from __future__ import annotations

import numpy as np
import pytest

from minipretrain.models import BERT, GPT, BERTConfig, GPTConfig
from minipretrain.nn.parameter import Parameter
from minipretrain.objectives import CausalLanguageModeling
from minipretrain.ops.cross_entropy import cross_entropy
from minipretrain.objectives.base import PreparedBatch
from minipretrain.optim import AdamW, OptimizerStateError, clip_grad_norm, param_groups
from minipretrain.optim.flat import FlatAdamW, FlatParameters

VOCAB, SEQ = 11, 8


def tiny_gpt(seed: int = 0, dtype: str = "float64") -> GPT:
    return GPT(GPTConfig(vocab_size=VOCAB, n_layer=2, n_head=2, n_embd=16, block_size=SEQ, seed=seed,
                         dtype=dtype))


def clm_batch(rng: np.random.Generator, batch: int = 4) -> PreparedBatch:
    ids = rng.integers(0, VOCAB, size=(batch, SEQ + 1))
    return PreparedBatch(input_ids=ids[:, :-1], attention_mask=np.ones((batch, SEQ), bool), labels=ids[:, 1:])


def backward(model: GPT, prepared: PreparedBatch) -> None:
    objective = CausalLanguageModeling(model)
    loss, _ = objective.loss(model, prepared, reduction="mean")
    loss.backward()


def test_parameters_become_views_of_one_buffer_and_the_model_is_unchanged():
    model = tiny_gpt()
    prepared = clm_batch(np.random.default_rng(0))
    before = CausalLanguageModeling(model).loss(model, prepared)[0].item()
    values = {name: p.data.copy() for name, p in model.named_parameters()}
    flat = FlatParameters(model.parameters())
    assert flat.size == model.num_parameters()
    for name, p in model.named_parameters():
        assert np.shares_memory(p.data, flat.data), name
        np.testing.assert_array_equal(p.data, values[name])
    assert CausalLanguageModeling(model).loss(model, prepared)[0].item() == before
    flat.data[flat.slices[0]] += 1.0  # writing the buffer writes the parameter
    np.testing.assert_array_equal(flat.params[0].data, values[model.named_parameters().__next__()[0]] + 1.0)


def test_collect_grads_copies_new_gradients_in_and_zero_fills_missing_ones():
    model = tiny_gpt()
    flat = FlatParameters(model.parameters())
    assert flat.collect_grads() == 0 and not flat.grad.any()  # a rank without targets contributes zeros
    backward(model, clm_batch(np.random.default_rng(1)))
    expected = np.concatenate([p.grad.reshape(-1) for p in flat.params])
    assert flat.collect_grads() == len(flat.params)
    np.testing.assert_array_equal(flat.grad, expected)
    assert all(np.shares_memory(p.grad, flat.grad) for p in flat.params)
    # Accumulating a second backward (the engine adds into .grad with a new array) is collected again.
    backward(model, clm_batch(np.random.default_rng(2)))
    second = np.concatenate([p.grad.reshape(-1) for p in flat.params])
    flat.collect_grads()
    np.testing.assert_array_equal(flat.grad, second)
    assert not np.array_equal(second, expected)


def test_load_state_dict_after_flattening_is_copied_back_into_the_buffer():
    model, other = tiny_gpt(seed=0), tiny_gpt(seed=1)
    optimizer = FlatAdamW(param_groups(model, 0.1), lr=1e-2)
    model.load_state_dict(other.state_dict())  # replaces every p.data with a fresh array
    optimizer.flat.rebind()
    for (name, p), q in zip(model.named_parameters(), other.parameters()):
        assert np.shares_memory(p.data, optimizer.flat.data), name
        np.testing.assert_array_equal(p.data, q.data)


def test_mixed_dtypes_and_partial_gradients_are_refused_with_a_clear_error():
    with pytest.raises(TypeError, match="one dtype"):
        FlatParameters([Parameter(np.zeros(2)), Parameter(np.zeros(2, np.float32))])
    a, b = Parameter(np.ones(3)), Parameter(np.ones(2))
    optimizer = FlatAdamW([a, b], lr=0.1)
    a.grad = np.ones(3)
    with pytest.raises(ValueError, match="only 1 of 2 parameters got a gradient"):
        optimizer.step()
    a.grad = None
    optimizer.step()  # no gradient at all: skipped, as AdamW does
    np.testing.assert_array_equal(a.data, np.ones(3))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("grad_clip", [None, 0.05])
def test_flat_adamw_equals_per_parameter_adamw_with_decay_groups_and_clipping(grad_clip, dtype):
    reference, flat_model = tiny_gpt(dtype=dtype), tiny_gpt(dtype=dtype)
    groups_ref, groups_flat = param_groups(reference, 0.1), param_groups(flat_model, 0.1)
    assert len(groups_ref) == 2  # a decayed and a no-decay group
    per_param = AdamW(groups_ref, lr=3e-2, betas=(0.9, 0.95), eps=1e-8)
    flat = FlatAdamW(groups_flat, lr=3e-2, betas=(0.9, 0.95), eps=1e-8)
    rng = np.random.default_rng(7)
    norms = []
    for step in range(5):
        prepared = clm_batch(rng)
        for model, optimizer in ((reference, per_param), (flat_model, flat)):
            optimizer.zero_grad()
            backward(model, prepared)
            optimizer.lr = 3e-2 * (step + 1) / 5
        if grad_clip is not None:
            # Over the same parameters in the same order (the optimizer's, group by group) as the buffer.
            norms.append((clip_grad_norm(per_param.params, grad_clip), flat.flat.clip_grad_norm(grad_clip)))
        per_param.step()
        flat.step()
        for (name, p), q in zip(reference.named_parameters(), flat_model.parameters()):
            np.testing.assert_array_equal(q.data, p.data, err_msg=name)
    for ref_norm, flat_norm in norms:
        assert ref_norm > 0.05  # clipping acted on every step
        assert flat_norm == ref_norm


def test_state_dict_is_adamw_format_and_resumes_into_either_optimizer():
    rng = np.random.default_rng(3)
    batches = [clm_batch(rng) for _ in range(4)]
    runs = {}
    for kind in ("adamw", "flat"):
        model = tiny_gpt()
        cls = AdamW if kind == "adamw" else FlatAdamW
        optimizer = cls(param_groups(model, 0.1), lr=1e-2)
        for prepared in batches[:2]:
            optimizer.zero_grad()
            backward(model, prepared)
            optimizer.step()
        runs[kind] = (model, optimizer, optimizer.state_dict())
    saved_ref, saved_flat = runs["adamw"][2], runs["flat"][2]
    assert saved_ref.keys() == saved_flat.keys()
    for key in saved_ref:
        np.testing.assert_array_equal(np.asarray(saved_flat[key]), np.asarray(saved_ref[key]), err_msg=key)
    # AdamW's checkpoint into FlatAdamW (and the flat one into AdamW) continue identically.
    continued = []
    for cls, saved in ((FlatAdamW, saved_ref), (AdamW, saved_flat)):
        model = tiny_gpt()
        model.load_state_dict(runs["adamw"][0].state_dict())
        optimizer = cls(param_groups(model, 0.1), lr=1e-2)
        optimizer.load_state_dict(saved)
        for prepared in batches[2:]:
            optimizer.zero_grad()
            backward(model, prepared)
            optimizer.step()
        continued.append([p.data.copy() for p in model.parameters()])
    for a, b in zip(*continued):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(OptimizerStateError, match="belongs to"):
        runs["flat"][1].load_state_dict({**saved_ref, "optimizer": "SGD"})


def test_flat_adamw_trains_bert_with_mlm_like_adamw():
    def run(cls):
        model = BERT(BERTConfig(vocab_size=VOCAB + 5, n_layer=1, n_head=2, n_embd=16, max_position_embeddings=SEQ,
                                dropout=0.0, dtype="float64"))
        optimizer = cls(param_groups(model, 0.01), lr=1e-2)
        rng = np.random.default_rng(0)
        for _ in range(3):
            ids = rng.integers(5, VOCAB + 5, size=(3, SEQ))
            labels = np.where(rng.random((3, SEQ)) < 0.3, ids, -100)
            logits = model(ids, attention_mask=np.ones((3, SEQ), bool), token_type_ids=np.zeros((3, SEQ), np.int64))
            optimizer.zero_grad()
            cross_entropy(logits, labels).backward()
            optimizer.step()
        return [p.data for p in model.parameters()]

    for a, b in zip(run(AdamW), run(FlatAdamW)):
        np.testing.assert_array_equal(a, b)
