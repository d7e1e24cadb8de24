"""GPT and BERT: gradients end to end, masking, dropout, checkpoints, tying, presets and counts."""
from __future__ import annotations

import math

import numpy as np
import pytest

import minipretrain as mp
from minipretrain import ops
from minipretrain.models import (
    BERT, GPT, PRESETS, BERTConfig, GPTConfig, count_parameters, create_bert_small, create_gpt_small, create_model,
    expected_flops_per_token, expected_parameters,
)
from minipretrain.nn import StateDictError

VOCAB = 23


def tiny_gpt(**overrides) -> GPT:
    fields = dict(vocab_size=VOCAB, n_layer=2, n_head=2, n_embd=8, block_size=12, dtype="float64", seed=0)
    fields.update(overrides)
    return GPT(GPTConfig(**fields))


def tiny_bert(**overrides) -> BERT:
    fields = dict(vocab_size=VOCAB, n_layer=2, n_head=2, n_embd=8, max_position_embeddings=12, dropout=0.0,
                  dtype="float64", seed=0)
    fields.update(overrides)
    return BERT(BERTConfig(**fields))


def ids(shape, seed=0, vocab=VOCAB):
    return np.random.default_rng(seed).integers(0, vocab, size=shape)


# ------------------------------------------------------------------------------------------ gradients
@pytest.mark.parametrize("make", [tiny_gpt, tiny_bert], ids=["gpt", "bert"])
def test_whole_model_gradients_match_finite_differences(make):
    """Every parameter tensor, on a seeded sample of its elements, with dropout on (re-seeded each call)."""
    model = make(dropout=0.1)
    inputs, targets = ids((2, 6), seed=1), ids((2, 6), seed=2)
    mask = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])

    def loss(*_params):
        model.reseed()  # the same dropout masks in every evaluation, as finite differences need
        return ops.cross_entropy(model(inputs, attention_mask=mask), targets)

    params = model.parameters()
    report = mp.gradcheck(loss, *params, max_elements=6, seed=3)
    assert len(report.inputs) == len(params)


# ------------------------------------------------------------------------------------------ shapes and inputs
def test_gpt_shapes_and_input_kinds():
    model = tiny_gpt()
    batch = ids((3, 7))
    logits = model(batch)
    assert isinstance(logits, mp.Tensor) and logits.shape == (3, 7, VOCAB)
    np.testing.assert_array_equal(model(mp.Tensor(batch)).numpy(), logits.numpy())
    assert model.kind == "gpt" and model.device == "cpu" and model.config.block_size == 12


def test_bert_shapes_encode_and_token_types():
    model = tiny_bert()
    batch = ids((3, 7))
    assert model(batch).shape == (3, 7, VOCAB)
    assert model.encode(batch).shape == (3, 7, 8)
    assert model.kind == "bert"
    segments = np.zeros((3, 7), dtype=np.int64)
    segments[:, 4:] = 1
    assert not np.allclose(model.encode(batch, token_type_ids=segments).numpy(), model.encode(batch).numpy())


def test_too_long_inputs_are_refused():
    with pytest.raises(ValueError, match="block_size"):
        tiny_gpt()(ids((1, 13)))
    with pytest.raises(ValueError, match="max_position_embeddings"):
        tiny_bert()(ids((1, 13)))
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        tiny_gpt()(ids((5,)))


# ------------------------------------------------------------------------------------------ masking
def test_gpt_is_causal():
    model = tiny_gpt()
    base = ids((2, 10))
    changed = base.copy()
    changed[:, 6] = (changed[:, 6] + 1) % VOCAB
    a, b = model(base).numpy(), model(changed).numpy()
    np.testing.assert_allclose(b[:, :6], a[:, :6], rtol=0, atol=1e-13)
    assert np.abs(b[:, 6:] - a[:, 6:]).min(axis=-1).max() > 1e-6  # the change does reach later positions


def test_bert_is_bidirectional():
    model = tiny_bert()
    base = ids((1, 10))
    changed = base.copy()
    changed[0, 8] = (changed[0, 8] + 1) % VOCAB
    assert np.abs(model(base).numpy()[0, 0] - model(changed).numpy()[0, 0]).max() > 1e-6


@pytest.mark.parametrize("make", [tiny_gpt, tiny_bert], ids=["gpt", "bert"])
def test_padding_never_changes_real_positions(make):
    """Right padding: the padded batch's real positions equal the unpadded sequence's, whatever the pad ids."""
    model = make()
    real = ids((1, 5), seed=4)
    padded = np.concatenate([real, ids((1, 4), seed=5)], axis=1)
    other_pad = np.concatenate([real, ids((1, 4), seed=6)], axis=1)
    mask = np.array([[1] * 5 + [0] * 4])
    alone = model(real).numpy()
    np.testing.assert_allclose(model(padded, attention_mask=mask).numpy()[:, :5], alone, rtol=0, atol=1e-13)
    np.testing.assert_allclose(model(other_pad, attention_mask=mask).numpy()[:, :5], alone, rtol=0, atol=1e-13)


def test_gpt_left_padding_is_ignored():
    model = tiny_gpt()
    real = ids((1, 6), seed=7)
    mask = np.array([[0, 0, 0] + [1] * 6])
    first = np.concatenate([ids((1, 3), seed=8), real], axis=1)
    second = np.concatenate([ids((1, 3), seed=9), real], axis=1)
    np.testing.assert_allclose(model(first, attention_mask=mask).numpy()[:, 3:],
                               model(second, attention_mask=mask).numpy()[:, 3:], rtol=0, atol=1e-13)


# ------------------------------------------------------------------------------------------ dropout
@pytest.mark.parametrize("make", [tiny_gpt, tiny_bert], ids=["gpt", "bert"])
def test_dropout_is_off_in_eval_and_seeded_in_train(make):
    batch = ids((2, 8))
    noisy, clean = make(dropout=0.3, seed=4), make(dropout=0.0, seed=4)
    noisy.eval()
    np.testing.assert_array_equal(noisy(batch).numpy(), clean(batch).numpy())  # same init, dropout off
    noisy.train()
    first = noisy(batch).numpy()
    assert np.abs(first - clean(batch).numpy()).max() > 1e-3
    np.testing.assert_array_equal(make(dropout=0.3, seed=4)(batch).numpy(), first)  # the seed fixes the masks
    second = noisy(batch).numpy()
    assert np.abs(second - first).max() > 1e-3  # the stream moves on between calls
    noisy.reseed()
    np.testing.assert_array_equal(noisy(batch).numpy(), first)


# ------------------------------------------------------------------------------------------ checkpoints
@pytest.mark.parametrize("make", [tiny_gpt, tiny_bert], ids=["gpt", "bert"])
def test_state_dict_round_trip(make):
    source, target = make(seed=1), make(seed=2)
    batch = ids((2, 6))
    assert not np.allclose(source(batch).numpy(), target(batch).numpy())
    target.load_state_dict(source.state_dict())
    np.testing.assert_array_equal(target(batch).numpy(), source(batch).numpy())


def test_state_dict_errors_name_the_entries():
    model = tiny_gpt()
    state = dict(model.state_dict())
    state.pop("transformer.ln_f.bias")
    state["transformer.h.0.attn.c_attn.weight"] = np.zeros((24, 8))
    state["lm_head.extra"] = np.zeros(3)
    with pytest.raises(StateDictError, match=r"transformer\.ln_f\.bias.*lm_head\.extra.*c_attn\.weight"):
        model.load_state_dict(state)


def test_float32_state_dict_loads_into_float64_model():
    source, target = tiny_gpt(dtype="float32"), tiny_gpt(seed=5)
    target.load_state_dict(source.state_dict())
    assert target.transformer.wte.weight.dtype == np.float64
    np.testing.assert_array_equal(target.transformer.wte.weight.data, source.transformer.wte.weight.data)


# ------------------------------------------------------------------------------------------ names, tying, init
def test_gpt_parameter_names_follow_hugging_face():
    names = [name for name, _ in tiny_gpt(n_layer=1).named_parameters()]
    assert names == [
        "transformer.wte.weight", "transformer.wpe.weight",
        "transformer.h.0.ln_1.weight", "transformer.h.0.ln_1.bias",
        "transformer.h.0.attn.c_attn.weight", "transformer.h.0.attn.c_attn.bias",
        "transformer.h.0.attn.c_proj.weight", "transformer.h.0.attn.c_proj.bias",
        "transformer.h.0.ln_2.weight", "transformer.h.0.ln_2.bias",
        "transformer.h.0.mlp.c_fc.weight", "transformer.h.0.mlp.c_fc.bias",
        "transformer.h.0.mlp.c_proj.weight", "transformer.h.0.mlp.c_proj.bias",
        "transformer.ln_f.weight", "transformer.ln_f.bias",
    ]
    params = dict(tiny_gpt(n_layer=1).named_parameters())
    assert params["transformer.h.0.attn.c_attn.weight"].shape == (8, 24)  # Conv1D layout: in x out


def test_bert_parameter_names_follow_hugging_face():
    params = dict(tiny_bert(n_layer=1).named_parameters())
    assert params["bert.encoder.layer.0.attention.self.query.weight"].shape == (8, 8)
    assert params["bert.encoder.layer.0.intermediate.dense.weight"].shape == (32, 8)  # Linear layout: out x in
    assert set(params) >= {
        "bert.embeddings.word_embeddings.weight", "bert.embeddings.position_embeddings.weight",
        "bert.embeddings.token_type_embeddings.weight", "bert.embeddings.LayerNorm.weight",
        "bert.encoder.layer.0.attention.output.dense.weight", "bert.encoder.layer.0.attention.output.LayerNorm.bias",
        "bert.encoder.layer.0.output.dense.weight", "bert.encoder.layer.0.output.LayerNorm.weight",
        "cls.predictions.bias", "cls.predictions.transform.dense.weight",
        "cls.predictions.transform.LayerNorm.weight",
    }
    assert not any(name.startswith("cls.predictions.decoder") for name in params)  # tied, listed once


def test_tied_weights_are_one_parameter():
    gpt, bert = tiny_gpt(), tiny_bert()
    assert gpt.lm_head.weight is gpt.transformer.wte.weight
    assert bert.cls.predictions.decoder.weight is bert.bert.embeddings.word_embeddings.weight
    assert bert.cls.predictions.decoder.bias is bert.cls.predictions.bias
    # the embedding table's gradient has both uses: perturbing it moves the loss through lookup and head
    ops.cross_entropy(gpt(ids((1, 4))), ids((1, 4), seed=1)).backward()
    grad = gpt.transformer.wte.weight.grad
    unused_rows = np.setdiff1d(np.arange(VOCAB), ids((1, 4)))
    assert np.abs(grad[unused_rows]).max() > 0  # only the head can reach rows no input token used


def test_initialisation_follows_gpt2():
    model = create_model("gpt-3m", vocab_size=100)
    block = model.transformer.h[0]
    # std estimates from ≥65k samples are within ~0.3% (1/√(2n)); 3% leaves room, not slack for a wrong scale
    assert np.std(block.attn.c_attn.weight.data) == pytest.approx(0.02, rel=0.03)
    assert np.std(block.attn.c_proj.weight.data) == pytest.approx(0.02 / math.sqrt(2 * 4), rel=0.03)
    assert np.std(block.mlp.c_proj.weight.data) == pytest.approx(0.02 / math.sqrt(2 * 4), rel=0.03)
    assert np.std(model.transformer.wte.weight.data) == pytest.approx(0.02, rel=0.03)
    assert not block.attn.c_attn.bias.data.any() and (block.ln_1.weight.data == 1).all()
    decays = {name: p.decay for name, p in model.named_parameters()}
    assert decays["transformer.h.0.attn.c_attn.weight"] and not decays["transformer.h.0.attn.c_attn.bias"]
    assert not decays["transformer.wte.weight"] and not decays["transformer.ln_f.weight"]


def test_seed_fixes_initialisation():
    np.testing.assert_array_equal(tiny_gpt(seed=3).transformer.h[1].mlp.c_fc.weight.data,
                                  tiny_gpt(seed=3).transformer.h[1].mlp.c_fc.weight.data)
    assert not np.array_equal(tiny_gpt(seed=3).transformer.wte.weight.data, tiny_gpt(seed=4).transformer.wte.weight.data)


# ------------------------------------------------------------------------------------------ presets and counts
@pytest.mark.parametrize("name", [n for n in PRESETS if n.endswith(("0.1m", "0.8m", "3m", "25m"))])
def test_preset_counts_match_the_formula(name):
    vocab = 70 if not name.endswith("25m") else 1000
    model = create_model(name, vocab_size=vocab)
    preset = PRESETS[name]
    expected = expected_parameters(preset.kind, vocab, preset.n_layer, preset.n_embd, preset.block_size,
                                   n_head=preset.n_head)
    assert model.num_parameters() == expected["total"]
    assert count_parameters(model, non_embedding=False) == expected["total"]
    assert count_parameters(model) == expected["non_embedding"]
    # what `python -m minipretrain models` prints without building is what the built model reports
    assert model.flops_per_token(preset.block_size) == expected_flops_per_token(
        preset.kind, vocab, preset.n_layer, preset.n_head, preset.n_embd, preset.block_size)


def test_baby_gpt_is_nanogpts_and_small_is_the_original():
    baby = create_model("gpt-0.8m", vocab_size=65)
    assert (baby.config.n_layer, baby.config.n_head, baby.config.n_embd, baby.config.block_size) == (4, 4, 128, 64)
    assert 0.75e6 < count_parameters(baby) < 0.85e6
    small = create_gpt_small(vocab_size=512)
    assert (small.config.n_layer, small.config.n_embd) == (6, 512) and isinstance(small, GPT)
    assert isinstance(create_bert_small(vocab_size=512), BERT)
    with pytest.raises(KeyError, match="gpt-0.8m"):
        create_model("gpt-7b", 10)


def test_flops_per_token_formula():
    model = create_model("gpt-0.8m", vocab_size=65)
    n = count_parameters(model) + 65 * 128
    assert model.flops_per_token(64) == 6 * n + 12 * 4 * 64 * 128
    assert tiny_bert().flops_per_token(12) == 6 * (count_parameters(tiny_bert()) + VOCAB * 8) + 12 * 2 * 12 * 8


def test_models_cli_prints_every_preset(capsys):
    from minipretrain.cli import main

    assert main(["models", "--vocab-size", "65"]) == 0
    out = capsys.readouterr().out
    for name in PRESETS:
        assert name in out
    assert "0.81M" in out  # gpt-0.8m with 65 characters
