"""Span corruption: T5's noise-span counts exactly, the span-length law over ≥1M tokens, sentinels in order,
every token kept or in exactly one span, input + target rebuild the original; seeded; the sentinel tokenizer."""
from __future__ import annotations

from math import comb

import numpy as np
import pytest
from scipy import stats

from minipretrain.models.t5 import T5, T5Config
from minipretrain.objectives.span_corruption import (
    SpanCorruption, noise_span_counts, random_segmentation, random_spans_noise_mask,
)
from minipretrain.ops.cross_entropy import IGNORE_INDEX
from minipretrain.tokenizers import CharTokenizer, load_tokenizer
from minipretrain.tokenizers.sentinels import SentinelTokenizer

TEXT = "the quick brown fox jumps over the lazy dog. " * 3


class Batch:
    def __init__(self, input_ids, attention_mask=None):
        self.input_ids = input_ids
        self.attention_mask = attention_mask


@pytest.fixture(scope="module")
def tokenizer():
    return SentinelTokenizer(CharTokenizer().train(TEXT), num_sentinels=40)


def tiny_t5(tokenizer):
    return T5(T5Config(vocab_size=tokenizer.vocab_size, d_model=8, num_layers=1, num_heads=2, dtype="float64"))


def objective(tokenizer, **options):
    return SpanCorruption(tiny_t5(tokenizer), tokenizer, **options)


def run_lengths(mask_row):
    """Lengths of the alternating runs of a boolean row, starting with the first value's run."""
    changes = np.flatnonzero(np.diff(mask_row.astype(int))) + 1
    return np.diff(np.concatenate([[0], changes, [len(mask_row)]]))


# ------------------------------------------------------------------------------------------- the mask
@pytest.mark.parametrize("length, expected", [(512, (77, 26)), (10, (2, 1)), (2, (1, 1)), (1, (1, 1)),
                                              (100, (15, 5)), (114, (17, 6))])
def test_noise_span_counts_are_t5s(length, expected):
    # 10·0.15 is 1.5 in float64 but 1.50000006 in float32 (T5's arithmetic): T5 drops 2 tokens, not 1
    assert noise_span_counts(length, 0.15, 3.0) == expected


def test_every_row_has_t5s_counts_and_alternating_spans_starting_with_kept_tokens():
    rng = np.random.default_rng(0)
    for length in (5, 17, 64, 333):
        mask = random_spans_noise_mask(length, 200, rng)
        num_noise, num_spans = noise_span_counts(length, 0.15, 3.0)
        assert (mask.sum(axis=1) == num_noise).all()
        assert not mask[:, 0].any()  # the first span is never noise
        for row in mask:
            runs = run_lengths(row)
            assert len(runs) == 2 * num_spans or (len(runs) == 2 * num_spans - 1 and not row[-1])
            assert (runs >= 1).all()


def test_over_a_million_tokens_density_and_mean_span_length_and_the_span_length_law():
    """2,048 rows of 512 tokens (1.05M): density and mean span length are T5's numbers, and the lengths of the
    noise spans follow the law of a uniformly random cut of 77 tokens into 26 non-empty spans,
    P(ℓ) = C(n-ℓ-1, k-2) / C(n-1, k-1), by a chi-square test."""
    rows, length = 2048, 512
    mask = random_spans_noise_mask(length, rows, np.random.default_rng(1234))
    num_noise, num_spans = noise_span_counts(length, 0.15, 3.0)
    density = mask.mean()
    # per-row density is fixed by T5's rounding (77/512); across rows it cannot vary, so its standard error is 0
    assert density == num_noise / length == pytest.approx(0.15, abs=0.5 / length)
    starts = mask & ~np.concatenate([np.zeros((rows, 1), bool), mask[:, :-1]], axis=1)
    spans_per_row = starts.sum(axis=1)
    assert (spans_per_row == num_spans).all()
    mean_span = mask.sum() / starts.sum()
    assert mean_span == pytest.approx(num_noise / num_spans) and abs(mean_span - 3.0) < 0.05
    lengths = np.concatenate([run_lengths(row)[1::2] for row in mask[:400]])  # 10,400 noise spans
    pmf = np.array([comb(num_noise - l - 1, num_spans - 2) / comb(num_noise - 1, num_spans - 1)
                    for l in range(1, num_noise - num_spans + 2)])
    assert pmf.sum() == pytest.approx(1.0)
    observed = np.bincount(lengths, minlength=len(pmf) + 1)[1:]
    expected = pmf * len(lengths)
    tail = np.argmax(expected < 5)  # pool the sparse tail into one bin, as chi-square needs
    observed = np.append(observed[:tail], observed[tail:].sum())
    expected = np.append(expected[:tail], expected[tail:].sum())
    chi2, p_value = stats.chisquare(observed, expected)
    assert p_value > 1e-3, (chi2, p_value)
    # the mean of one span's length is n/k with standard error σ/√N: the empirical mean is within 4 of them
    mean, sd = (pmf * np.arange(1, len(pmf) + 1)).sum(), np.sqrt(
        (pmf * np.arange(1, len(pmf) + 1) ** 2).sum() - ((pmf * np.arange(1, len(pmf) + 1)).sum()) ** 2)
    assert abs(lengths.mean() - mean) < 4 * sd / np.sqrt(len(lengths))
    # where spans start is spread over the whole sequence: every position after the first is noise sometimes
    assert mask[:, 1:].any(axis=0).all()


def test_random_segmentation_sums_and_refuses_impossible_cuts():
    lengths = random_segmentation(10, 4, 1000, np.random.default_rng(0))
    assert (lengths.sum(axis=1) == 10).all() and (lengths >= 1).all()
    # every one of the C(9, 3) = 84 cuts is possible; 1000 draws see most of them
    assert len({tuple(r) for r in lengths}) > 70
    with pytest.raises(ValueError, match="non-empty spans"):
        random_segmentation(3, 4, 1, np.random.default_rng(0))


def test_the_mask_is_seeded_and_dynamic():
    a = random_spans_noise_mask(64, 8, np.random.default_rng(7))
    b = random_spans_noise_mask(64, 8, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, random_spans_noise_mask(64, 8, np.random.default_rng(8)))


# ------------------------------------------------------------------------------------- inputs and targets
def reconstruct(inputs, targets, sentinel_ids, eos):
    """Fill each sentinel of the input with the target's piece after the same sentinel."""
    sentinel_index = {s: k for k, s in enumerate(sentinel_ids)}
    pieces, current = {}, None
    for t in targets:
        if t == eos:
            break
        if t in sentinel_index:
            current = sentinel_index[t]
            pieces[current] = []
        else:
            pieces[current].append(t)
    out = []
    for t in inputs:
        if t == eos:
            break
        out.extend(pieces[sentinel_index[t]] if t in sentinel_index else [t])
    return out


def test_inputs_and_targets_rebuild_the_original_over_a_million_tokens(tokenizer):
    span = objective(tokenizer, noise_density=0.15, mean_noise_span_length=3.0)
    rng = np.random.default_rng(0)
    originals = rng.integers(0, len(tokenizer.base.characters), size=(4096, 256))  # 1.05M ordinary tokens
    noise, inputs, targets = span.corrupt(originals, np.random.default_rng(1))
    num_noise, num_spans = noise_span_counts(256, 0.15, 3.0)
    assert inputs.shape == (4096, 256 - num_noise + num_spans + 1)
    assert targets.shape == (4096, num_noise + num_spans + 1)
    sentinels = span.sentinel_ids
    is_sentinel_in, is_sentinel_out = np.isin(inputs, sentinels), np.isin(targets, sentinels)
    # sentinels in order <extra_id_0>, <extra_id_1>, ... in both, the same ones
    np.testing.assert_array_equal(inputs[is_sentinel_in].reshape(4096, -1), np.tile(sentinels[:num_spans], (4096, 1)))
    np.testing.assert_array_equal(targets[is_sentinel_out].reshape(4096, -1), inputs[is_sentinel_in].reshape(4096, -1))
    # every token is either kept (in the input, in order) or in exactly one span (in the target, in order)
    np.testing.assert_array_equal(inputs[:, :-1][~is_sentinel_in[:, :-1]], originals[~noise])
    np.testing.assert_array_equal(targets[:, :-1][~is_sentinel_out[:, :-1]], originals[noise])
    assert (inputs[:, -1] == span.eos_id).all() and (targets[:, -1] == span.eos_id).all()
    for row in range(0, 4096, 97):  # and the two together give back the original, token for token
        assert reconstruct(inputs[row].tolist(), targets[row].tolist(), sentinels.tolist(), span.eos_id) == \
            originals[row].tolist()


def test_prepare_builds_teacher_forcing_and_handles_padded_rows(tokenizer):
    span = objective(tokenizer)
    ids = np.array([tokenizer.encode(TEXT[:40]), tokenizer.encode(TEXT[5:45])])
    mask = np.ones(ids.shape, bool)
    mask[1, 25:] = False  # a shorter second row
    prepared = span.prepare(Batch(ids, mask), np.random.default_rng(0))
    real = prepared.labels != IGNORE_INDEX
    assert prepared.num_targets == real.sum()
    assert (prepared.decoder_input_ids[:, 0] == tokenizer.pad_id).all()
    np.testing.assert_array_equal(prepared.decoder_input_ids[:, 1:][real[:, 1:]], prepared.labels[:, :-1][real[:, 1:]])
    for row, n in enumerate((40, 25)):
        got = reconstruct(prepared.input_ids[row][prepared.attention_mask[row]].tolist(),
                          prepared.labels[row][real[row]].tolist(), span.sentinel_ids.tolist(), span.eos_id)
        assert got == ids[row, :n].tolist()
    again = span.prepare(Batch(ids, mask), np.random.default_rng(0))
    np.testing.assert_array_equal(again.input_ids, prepared.input_ids)


def test_the_loss_is_token_weighted_and_metrics_are_reported(tokenizer):
    model = tiny_t5(tokenizer)
    span = SpanCorruption(model, tokenizer)
    ids = np.array([tokenizer.encode(TEXT[:30]), tokenizer.encode(TEXT[3:33])])
    prepared = span.prepare(Batch(ids), np.random.default_rng(0))
    mean_loss, metrics = span.loss(model, prepared)
    sum_loss, _ = span.loss(model, prepared, reduction="sum")
    assert sum_loss.item() == pytest.approx(mean_loss.item() * prepared.num_targets, rel=1e-12)
    assert metrics["num_targets"] == prepared.num_targets and 0.0 <= metrics["accuracy"] <= 1.0
    assert len(span.examples(model, Batch(ids), count=1)) == 1


def test_bad_settings_are_refused(tokenizer):
    with pytest.raises(ValueError, match="sentinel tokens"):
        SpanCorruption(tiny_t5(tokenizer), CharTokenizer().train(TEXT))
    with pytest.raises(ValueError, match="noise_density"):
        objective(tokenizer, noise_density=1.0)
    few = SentinelTokenizer(CharTokenizer().train(TEXT), num_sentinels=2)
    span = objective(few)
    with pytest.raises(ValueError, match="only 2 sentinels"):
        span.corrupt(np.zeros((1, 200), np.int64), np.random.default_rng(0))


# ------------------------------------------------------------------------------------ sentinel tokenizer
def test_sentinels_take_the_last_ids_counting_down_and_round_trip(tokenizer, tmp_path):
    v = tokenizer.base.vocab_size
    assert tokenizer.vocab_size == v + 40
    assert tokenizer.special_tokens["<extra_id_0>"] == v + 39 and tokenizer.special_tokens["<extra_id_39>"] == v
    ids = tokenizer.encode("the <extra_id_0> fox<extra_id_1>", allowed_special="all")
    assert tokenizer.decode(ids) == "the <extra_id_0> fox<extra_id_1>"
    assert tokenizer.encode("fox") == tokenizer.base.encode("fox")
    tokenizer.save(tmp_path / "tok.json")
    loaded = load_tokenizer(tmp_path / "tok.json")
    assert loaded.vocab_size == tokenizer.vocab_size and loaded.decode(ids) == tokenizer.decode(ids)
    assert loaded.fingerprint() == tokenizer.fingerprint() != tokenizer.base.fingerprint()


def test_padded_rows_of_many_lengths_over_a_million_tokens():
    """2,048 right-padded rows of 16-1,024 real tokens (≈1.07M): each gets T5's counts for its own length, the
    overall density and mean span length are 0.15 and 3 up to T5's rounding, and every row is rebuilt exactly."""
    tokenizer = SentinelTokenizer(CharTokenizer().train(TEXT), num_sentinels=100)  # T5's 100: ≤ 51 spans here
    span = objective(tokenizer)
    rng = np.random.default_rng(5)
    lengths = rng.integers(16, 1025, size=2048)
    mask = np.arange(1024)[None, :] < lengths[:, None]
    ids = np.where(mask, rng.integers(0, len(tokenizer.base.characters), size=mask.shape), tokenizer.pad_id)
    assert mask.sum() > 1_000_000
    prepared = span.prepare(Batch(ids, mask), np.random.default_rng(6))
    in_sentinels = np.isin(prepared.input_ids, span.sentinel_ids) & prepared.attention_mask
    real_labels = prepared.labels != IGNORE_INDEX
    counts = np.array([noise_span_counts(n, 0.15, 3.0) for n in lengths])
    np.testing.assert_array_equal(in_sentinels.sum(axis=1), counts[:, 1])
    np.testing.assert_array_equal(real_labels.sum(axis=1), counts[:, 0] + counts[:, 1] + 1)
    density = counts[:, 0].sum() / lengths.sum()
    mean_span = counts[:, 0].sum() / counts[:, 1].sum()
    assert abs(density - 0.15) < 1e-3 and abs(mean_span - 3.0) < 0.05, (density, mean_span)
    for row in range(0, 2048, 41):
        got = reconstruct(prepared.input_ids[row][prepared.attention_mask[row]].tolist(),
                          prepared.labels[row][real_labels[row]].tolist(), span.sentinel_ids.tolist(), span.eos_id)
        assert got == ids[row, :lengths[row]].tolist()
