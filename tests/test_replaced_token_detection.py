"""ELECTRA's replaced-token detection: masking, seeded sampling with no gradient through it, the labels (a sample
equal to the original is original), L = L_MLM + 50·L_disc, token-weighted sums, and metrics."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import minipretrain as mp
from minipretrain import ops
from minipretrain.models.electra import ELECTRA, ElectraConfig, ELECTRAConfig
from minipretrain.objectives.replaced_token_detection import (
    ReplacedTokenDetection, roc_auc, sample_by_inverse_cdf,
)
from minipretrain.ops.binary_cross_entropy import binary_cross_entropy_with_logits
from minipretrain.ops.cross_entropy import IGNORE_INDEX
from minipretrain.tokenizers import CharTokenizer

TEXT = "to be or not to be, that is the question. " * 4


class Batch:
    def __init__(self, input_ids, attention_mask, special_tokens_mask):
        self.input_ids, self.attention_mask, self.special_tokens_mask = input_ids, attention_mask, special_tokens_mask


@pytest.fixture(scope="module")
def tokenizer():
    return CharTokenizer().train(TEXT)


def make(tokenizer, **options):
    d = ElectraConfig(vocab_size=tokenizer.vocab_size, embedding_size=16, hidden_size=32, num_hidden_layers=1,
                      num_attention_heads=2, max_position_embeddings=64, dropout=0.0, dtype="float64", seed=1)
    model = ELECTRA(ELECTRAConfig(discriminator=d))
    return model, ReplacedTokenDetection(model.generator, model.discriminator, tokenizer, **options)


def batch(tokenizer, rows=3, length=24):
    """[CLS] text [SEP] rows, the last one padded."""
    body = np.array([tokenizer.encode(TEXT[i:i + length - 2]) for i in range(rows)])
    ids = np.concatenate([np.full((rows, 1), tokenizer.cls_id), body, np.full((rows, 1), tokenizer.sep_id)], axis=1)
    mask = np.ones(ids.shape, bool)
    mask[-1, length // 2:] = False
    ids[-1, length // 2:] = tokenizer.pad_id
    special = np.isin(ids, list(tokenizer.special_ids))
    return Batch(ids, mask, special)


def test_masking_picks_real_non_special_tokens_at_the_rate_asked(tokenizer):
    _, rtd = make(tokenizer, mask_prob=0.15)
    big = batch(tokenizer, rows=40, length=64)
    big = Batch(np.tile(big.input_ids, (100, 1)), np.tile(big.attention_mask, (100, 1)),
                np.tile(big.special_tokens_mask, (100, 1)))
    prepared = rtd.prepare(big, np.random.default_rng(0))
    selected = prepared.labels != IGNORE_INDEX
    candidates = big.attention_mask & ~big.special_tokens_mask
    assert not (selected & ~candidates).any()
    n = candidates.sum()
    rate = selected.sum() / n
    assert abs(rate - 0.15) < 4 * np.sqrt(0.15 * 0.85 / n), rate  # within 4 standard errors (n ≈ 250k)
    masked = prepared.input_ids[selected] == tokenizer.mask_id
    assert abs(masked.mean() - 0.85) < 4 * np.sqrt(0.85 * 0.15 / selected.sum())
    np.testing.assert_array_equal(prepared.input_ids[selected & (prepared.input_ids != tokenizer.mask_id)],
                                  big.input_ids[selected & (prepared.input_ids != tokenizer.mask_id)])
    again = rtd.prepare(big, np.random.default_rng(0))
    np.testing.assert_array_equal(again.input_ids, prepared.input_ids)
    np.testing.assert_array_equal(again.sampling_uniforms, prepared.sampling_uniforms)


def test_inverse_cdf_sampling_follows_the_distribution():
    probs = np.array([0.5, 0.2, 0.2, 0.1, 0.0])
    uniforms = np.random.default_rng(0).random(100_000)
    draws = sample_by_inverse_cdf(np.tile(probs, (len(uniforms), 1)), uniforms)
    counts = np.bincount(draws, minlength=5)
    assert counts[4] == 0  # a zero-probability token is never drawn
    _, p_value = stats.chisquare(counts[:4], probs[:4] * len(uniforms))
    assert p_value > 1e-3


def test_a_sample_equal_to_the_original_counts_as_original(tokenizer):
    model, rtd = make(tokenizer)
    prepared = rtd.prepare(batch(tokenizer), np.random.default_rng(1))
    selected = prepared.labels != IGNORE_INDEX
    assert selected.sum() >= 2
    logits = np.zeros(prepared.input_ids.shape + (tokenizer.vocab_size,))
    rows, cols = np.nonzero(selected)
    other = (prepared.original_ids[rows, cols] + 1) % len(tokenizer.characters)
    half = np.arange(len(rows)) % 2 == 0
    logits[rows[half], cols[half], prepared.original_ids[rows[half], cols[half]]] = 1e4  # the generator is right
    logits[rows[~half], cols[~half], other[~half]] = 1e4                                # ... or sure of another
    corrupted, replaced = rtd.replace(mp.tensor(logits), prepared, "cpu")
    np.testing.assert_array_equal(corrupted[rows[half], cols[half]], prepared.original_ids[rows[half], cols[half]])
    np.testing.assert_array_equal(corrupted[rows[~half], cols[~half]], other[~half])
    expected = np.zeros(selected.shape)
    expected[rows[~half], cols[~half]] = 1
    np.testing.assert_array_equal(replaced, expected)  # unmasked positions are original too


def test_loss_is_mlm_plus_50_bce_and_its_sum_is_token_weighted(tokenizer):
    model, rtd = make(tokenizer)
    prepared = rtd.prepare(batch(tokenizer), np.random.default_rng(2))
    loss, metrics = rtd.loss(model, prepared)
    generator_logits = model.generator(prepared.input_ids, prepared.attention_mask, prepared.token_type_ids)
    corrupted, replaced = rtd.replace(generator_logits, prepared, "cpu")
    mlm = ops.cross_entropy(generator_logits, prepared.labels).item()
    bce = binary_cross_entropy_with_logits(model.discriminator(corrupted, prepared.attention_mask),
                                           replaced, mask=prepared.attention_mask).item()
    assert loss.item() == pytest.approx(mlm + 50 * bce, rel=1e-12)
    assert metrics["loss"] == pytest.approx(loss.item(), rel=1e-12)
    assert metrics["mlm_loss"] == pytest.approx(mlm, rel=1e-12) and metrics["disc_loss"] == pytest.approx(bce)
    summed, _ = rtd.loss(model, prepared, reduction="sum")
    assert summed.item() == pytest.approx(loss.item() * prepared.num_targets, rel=1e-12)
    assert 0 <= metrics["disc_accuracy"] <= 1 and 0 <= metrics["replaced_fraction"] <= 1


def test_no_gradient_flows_through_the_sampling(tokenizer):
    """The generator's own weights get exactly the MLM gradient: the discriminator's loss reaches the generator
    only through the shared embeddings, never through the sampled tokens."""
    model, rtd = make(tokenizer)
    prepared = rtd.prepare(batch(tokenizer), np.random.default_rng(3))
    loss, _ = rtd.loss(model, prepared)
    loss.backward()
    own = model.generator.generator_predictions.dense.weight
    full = own.grad.copy()
    model.zero_grad()
    ops.cross_entropy(model.generator(prepared.input_ids, prepared.attention_mask), prepared.labels).backward()
    np.testing.assert_allclose(full, own.grad, rtol=1e-12, atol=1e-15)
    assert model.discriminator.discriminator_predictions.dense.weight.grad is None


def test_roc_auc_by_hand():
    assert roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([False, False, True, True])) == 0.75
    assert roc_auc(np.array([1.0, 2.0]), np.array([True, True])) is None


def test_bad_arguments_are_refused(tokenizer):
    model, _ = make(tokenizer)
    with pytest.raises(ValueError, match="generator and discriminator"):
        ReplacedTokenDetection(model.discriminator, model.generator, tokenizer)
    with pytest.raises(ValueError, match="mask_prob"):
        ReplacedTokenDetection(model.generator, model.discriminator, tokenizer, mask_prob=1.5)
    other, rtd = make(tokenizer)
    with pytest.raises(ValueError, match="not the ELECTRA"):
        rtd.loss(model, rtd.prepare(batch(tokenizer), np.random.default_rng(0)))


def test_examples_mark_flagged_tokens(tokenizer):
    model, rtd = make(tokenizer)
    shown = rtd.examples(model, batch(tokenizer), count=2)
    assert len(shown) == 2 and all(isinstance(s, str) and s for s in shown)


def test_probes_read_the_discriminator_on_bracketed_windows(tokenizer):
    from minipretrain.evaluation.probe import encode_texts, extract_features

    model, _ = make(tokenizer)
    texts = ["to be or not", "that is the question"]
    features = extract_features(model, tokenizer, texts, max_len=16)
    assert features.shape == (2, model.config.discriminator.hidden_size)
    ids, attention, pool = encode_texts(tokenizer, texts, 16, "electra")
    assert (ids[:, 0] == tokenizer.cls_id).all() and not pool[:, 0].any()
    hidden = model.discriminator.encode(ids, attention).numpy()
    np.testing.assert_allclose(features[0], hidden[0][pool[0]].mean(axis=0), rtol=1e-12)
    from minipretrain.evaluation.probe import is_bracketed

    assert [is_bracketed(k) for k in ("bert", "electra", "electra-discriminator", "gpt", "t5")] == [
        True, True, True, False, False]


def test_make_objective_builds_rtd_from_the_pair_and_refuses_another_model(tokenizer):
    from minipretrain.models import create_model
    from minipretrain.objectives import make_objective

    pair = create_model("electra", tokenizer.vocab_size, n_layer=1, n_head=2, n_embd=32, block_size=16)
    rtd = make_objective("rtd", pair, tokenizer, disc_weight=10.0)
    assert rtd.generator is pair.generator and rtd.discriminator is pair.discriminator and rtd.disc_weight == 10.0
    with pytest.raises(ValueError, match="ELECTRA pair"):
        make_objective("rtd", create_model("bert", tokenizer.vocab_size, n_layer=1, n_head=2, n_embd=8), tokenizer)
    with pytest.raises(ValueError, match="unknown electra model options \\['n_hidden'\\]"):
        create_model("electra", tokenizer.vocab_size, n_layer=1, n_head=2, n_embd=32, n_hidden=3)
    small = create_model("electra", tokenizer.vocab_size, n_layer=1, n_head=2, n_embd=32, generator_hidden_size=16,
                         generator_num_attention_heads=1)
    assert small.config.generator.hidden_size == 16 and small.config.discriminator.hidden_size == 32
