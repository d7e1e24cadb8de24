"""T5: relative-position buckets, the shared bias's gradient, and parity with transformers' T5ForConditionalGeneration
(random weights, padding on both sides; float64 and float32), checkpoints both ways, gradients vs torch."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minipretrain as mp
from conftest import check_gradients
from minipretrain import ops
from minipretrain.interop import UnsupportedCheckpointError, load_hf_checkpoint, save_hf_checkpoint
from minipretrain.models.t5 import T5, T5Config, relative_position_buckets, shift_right
from minipretrain.ops.biased_attention import biased_attention
from minipretrain.ops.cross_entropy import IGNORE_INDEX

VOCAB = 41
TOLERANCE = {"float64": 1e-10, "float32": 1e-4}


def our_t5(dtype="float64", ff="relu", seed=3):
    return T5(T5Config(vocab_size=VOCAB, d_model=16, num_layers=2, num_heads=2, d_kv=6, d_ff=20,
                       num_decoder_layers=3, relative_attention_num_buckets=8, relative_attention_max_distance=20,
                       feed_forward_proj=ff, dtype=dtype, seed=seed))


def inputs(seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(2, VOCAB, size=(3, 11))
    mask = np.arange(11)[None, :] < np.array([[11], [7], [3]])
    labels = rng.integers(2, VOCAB, size=(3, 9))
    labels[1, 6:] = IGNORE_INDEX
    labels[2, 2:] = IGNORE_INDEX
    decoder_ids = shift_right(labels, 0, 0)
    decoder_mask = labels != IGNORE_INDEX
    return ids, mask, labels, decoder_ids, decoder_mask


# ---------------------------------------------------------------------------------- buckets and the bias
def test_buckets_by_hand():
    b = relative_position_buckets(1, 40, bidirectional=True, num_buckets=8, max_distance=20)[0]
    # bidirectional: 4 buckets per side, exact below 2, log-spaced up to 20; keys to the right get +4
    assert b[:3].tolist() == [0, 5, 6]
    assert b[-1] == 7 and b[0] == 0
    causal = relative_position_buckets(40, 1, bidirectional=False, num_buckets=8, max_distance=20)[:, 0]
    assert causal[:4].tolist() == [0, 1, 2, 3] and causal[-1] == 7
    assert (relative_position_buckets(5, 5, False, 8, 20)[np.triu_indices(5, 1)] == 0).all()  # the future: 0


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("num_buckets, max_distance", [(32, 128), (8, 20), (16, 50)])
def test_buckets_equal_hugging_faces(bidirectional, num_buckets, max_distance):
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from transformers.models.t5.modeling_t5 import T5Attention

    q, k = 300, 310
    relative = torch.arange(k)[None, :] - torch.arange(q)[:, None]
    theirs = T5Attention._relative_position_bucket(relative, bidirectional=bidirectional, num_buckets=num_buckets,
                                                   max_distance=max_distance).numpy()
    np.testing.assert_array_equal(relative_position_buckets(q, k, bidirectional, num_buckets, max_distance), theirs)


@given(buckets=st.sampled_from([4, 6, 8, 16, 32, 64]), factor=st.integers(2, 40), query=st.integers(1, 70),
       key=st.integers(1, 70), bidirectional=st.booleans())
def test_buckets_equal_hugging_faces_for_drawn_settings(buckets, factor, query, key, bidirectional):
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from transformers.models.t5.modeling_t5 import T5Attention

    max_distance = factor * buckets  # beyond the exact range of either direction, as every real T5 setting
    relative = torch.arange(key)[None, :] - torch.arange(query)[:, None]
    theirs = T5Attention._relative_position_bucket(relative, bidirectional=bidirectional, num_buckets=buckets,
                                                   max_distance=max_distance).numpy()
    np.testing.assert_array_equal(relative_position_buckets(query, key, bidirectional, buckets, max_distance), theirs)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_gradient_reaches_the_bias_table_through_the_bucket_gather(bidirectional):
    """Many (query, key) pairs share a bucket: their gradients must add up in that row of the table."""
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((2, 2, 6, 3)) for _ in range(3))
    table = rng.standard_normal((8, 2))
    buckets = relative_position_buckets(6, 6, bidirectional, 8, 20)

    def attend(q_, k_, v_, table_):
        bias = ops.embedding(table_, buckets).permute(2, 0, 1).reshape(1, 2, 6, 6)
        return biased_attention(q_, k_, v_, bias, causal=not bidirectional)

    check_gradients(attend, q, k, v, table)


def test_gradient_of_a_whole_t5_loss_numerically():
    model = our_t5(seed=5)
    ids, mask, labels, decoder_ids, decoder_mask = inputs()
    table = model.encoder.block[0].layer[0].SelfAttention.relative_attention_bias.weight
    wo = model.decoder.block[2].layer[2].DenseReluDense.wo.weight

    def loss(table_, wo_):
        return ops.cross_entropy(model(ids, mask, decoder_ids, decoder_mask), labels)

    report = mp.gradcheck(loss, table, wo, max_elements=40)
    assert report.passed, str(report)


def test_shift_right_starts_with_the_start_token_and_pads_ignored_labels():
    labels = np.array([[5, 6, 7], [8, IGNORE_INDEX, IGNORE_INDEX]])
    np.testing.assert_array_equal(shift_right(labels, 0, 0), [[0, 5, 6], [0, 8, 0]])


def test_padding_does_not_change_real_positions():
    model = our_t5()
    ids, mask, labels, decoder_ids, decoder_mask = inputs()
    full = model(ids, mask, decoder_ids, decoder_mask).numpy()
    changed = ids.copy()
    changed[~mask] = 7  # other ids under the padding
    again = model(changed, mask, decoder_ids, decoder_mask).numpy()
    np.testing.assert_allclose(again[decoder_mask], full[decoder_mask], rtol=0, atol=1e-13)


def test_bad_input_is_refused_clearly():
    model = our_t5()
    ids, mask, *_ = inputs()
    with pytest.raises(ValueError, match="decoder_input_ids, or labels"):
        model(ids, mask)
    with pytest.raises(ValueError, match="attention_mask has shape"):
        model(ids, mask[:, :3], decoder_input_ids=ids)
    with pytest.raises(ValueError, match="feed_forward_proj"):
        T5Config(vocab_size=5, d_model=8, num_layers=1, num_heads=2, feed_forward_proj="swish")


# ----------------------------------------------------------------------------- parity with transformers
def _variance_in_the_input_dtype(monkeypatch):
    """transformers' T5LayerNorm takes mean(x²) in float32 even for float64 inputs (for half-precision safety),
    which limits float64 agreement to ~1e-7; with this one line computing it in the input's dtype, the float64
    comparison can be exact to rounding. (The float32 comparisons and one float64 test use it as shipped.)"""
    import torch
    from transformers.models.t5 import modeling_t5

    def forward(self, hidden_states):
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        return self.weight * (hidden_states * torch.rsqrt(variance + self.variance_epsilon))

    monkeypatch.setattr(modeling_t5.T5LayerNorm, "forward", forward)


def _hf_model(tmp_path, ff, dtype):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.T5Config(vocab_size=VOCAB, d_model=16, d_kv=6, d_ff=20, num_layers=2, num_decoder_layers=3,
                                   num_heads=2, relative_attention_num_buckets=8, relative_attention_max_distance=20,
                                   feed_forward_proj=ff, dropout_rate=0.0, decoder_start_token_id=0, pad_token_id=0,
                                   eos_token_id=1)
    model = transformers.T5ForConditionalGeneration(config).to(getattr(torch, dtype)).eval()
    with torch.no_grad():  # layer norm gains start at 1: make them random too, so a mis-wired one shows
        for name, p in model.named_parameters():
            if name.endswith("layer_norm.weight"):
                p.copy_(1 + 0.3 * torch.randn_like(p))
    model.save_pretrained(tmp_path / "hf")
    return torch, model


@pytest.mark.parametrize("ff", ["relu", "gated-gelu"])
@pytest.mark.parametrize("dtype, exact_variance", [("float64", True), ("float64", False), ("float32", False)],
                         ids=["float64", "float64-hf-float32-variance", "float32"])
def test_logits_equal_transformers_with_padding(tmp_path, monkeypatch, ff, dtype, exact_variance):
    torch, theirs = _hf_model(tmp_path, ff, dtype)
    if exact_variance:
        _variance_in_the_input_dtype(monkeypatch)
    tolerance = TOLERANCE[dtype] if exact_variance or dtype == "float32" else 1e-6
    ours = load_hf_checkpoint(tmp_path / "hf")
    assert ours.config.feed_forward_proj == ff and all(p.dtype == np.dtype(dtype) for p in ours.parameters())
    ids, mask, labels, decoder_ids, decoder_mask = inputs()
    with torch.no_grad():
        expected = theirs(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask.astype(np.int64)),
                          decoder_input_ids=torch.tensor(decoder_ids),
                          decoder_attention_mask=torch.tensor(decoder_mask.astype(np.int64))).logits.numpy()
    got = ours.eval()(ids, mask, decoder_ids, decoder_mask).numpy()
    error = np.abs(got - expected)[decoder_mask].max()
    print(f"T5 {ff} {dtype} (exact variance: {exact_variance}): max |logits - transformers| = {error:.2e}")
    assert error <= tolerance * max(1.0, np.abs(expected).max())


@pytest.mark.parametrize("ff", ["relu", "gated-gelu"])
def test_our_save_opens_in_transformers_without_warnings_and_agrees(tmp_path, monkeypatch, ff):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    _variance_in_the_input_dtype(monkeypatch)
    ours = our_t5(ff=ff).eval()
    save_hf_checkpoint(ours, tmp_path)
    theirs, info = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path, output_loading_info=True,
                                                                          dtype=torch.float64)
    assert not any(info[key] for key in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    ids, mask, labels, decoder_ids, decoder_mask = inputs(1)
    with torch.no_grad():
        expected = theirs.eval()(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask.astype(np.int64)),
                                 decoder_input_ids=torch.tensor(decoder_ids)).logits.numpy()
    np.testing.assert_allclose(ours(ids, mask, decoder_ids).numpy(), expected, rtol=0,
                               atol=TOLERANCE["float64"] * np.abs(expected).max())
    again = load_hf_checkpoint(tmp_path)
    np.testing.assert_array_equal(again.eval()(ids, mask, decoder_ids).numpy(), ours(ids, mask, decoder_ids).numpy())


@pytest.mark.parametrize("ff", ["relu", "gated-gelu"])
def test_gradients_of_the_loss_equal_torch_autograd(tmp_path, monkeypatch, ff):
    torch, theirs = _hf_model(tmp_path, ff, "float64")
    _variance_in_the_input_dtype(monkeypatch)
    ours = load_hf_checkpoint(tmp_path / "hf")
    ids, mask, labels, decoder_ids, decoder_mask = inputs(2)
    out = theirs(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask.astype(np.int64)),
                 labels=torch.tensor(labels), decoder_attention_mask=torch.tensor(decoder_mask.astype(np.int64)))
    out.loss.backward()
    loss = ops.cross_entropy(ours.eval()(ids, mask, labels=labels, decoder_attention_mask=decoder_mask), labels)
    loss.backward()
    assert loss.item() == pytest.approx(out.loss.item(), rel=1e-12)
    expected = {name: p.grad.numpy() for name, p in theirs.named_parameters()}
    worst = 0.0
    for name, p in ours.named_parameters():
        reference = expected[name]
        worst = max(worst, float(np.abs(p.grad - reference).max() / max(np.abs(reference).max(), 1e-30)))
    print(f"T5 {ff} gradients: worst max-relative error over {len(expected)} tensors = {worst:.2e}")
    assert worst < 1e-10


def test_untied_or_unknown_checkpoints_are_refused(tmp_path):
    save_hf_checkpoint(our_t5(), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    for setting, value in (("feed_forward_proj", "gated-silu"), ("tie_word_embeddings", False)):
        (tmp_path / "config.json").write_text(json.dumps({**config, setting: value}))
        with pytest.raises(UnsupportedCheckpointError, match=setting):
            load_hf_checkpoint(tmp_path)


def test_create_model_builds_t5_from_the_shared_sizes():
    from minipretrain.models import create_model

    model = create_model("t5", VOCAB, n_layer=2, n_head=2, n_embd=16, block_size=40, feed_forward_proj="gated-gelu")
    c = model.config
    assert (c.num_layers, c.num_decoder_layers, c.num_heads, c.d_model, c.max_length) == (2, 2, 2, 16, 40)
    with pytest.raises(ValueError, match="unknown t5 model options \\['n_hidden'\\]; known: .*'n_embd'"):
        create_model("t5", VOCAB, n_layer=1, n_head=2, n_embd=16, n_hidden=3)
