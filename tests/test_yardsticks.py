"""Yardsticks: count models and compressors, checked against hand-worked examples and dictionary references."""
from __future__ import annotations

import math
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minipretrain.data import MarkovCorpus
from minipretrain.evaluation.yardsticks import (
    MIN_DISCOUNT,
    NGramModel,
    Yardstick,
    bits_per_byte,
    conditional_code_length_bits,
    corpus_yardsticks,
    format_table,
    main,
    yardstick_table,
)

# Tiny training text for the worked examples: ids 0 1 0 1 1 over a vocabulary of 3 (id 2 is never seen).
TRAIN = [0, 1, 0, 1, 1]


def _distribution(model: NGramModel, context: list[int]) -> np.ndarray:
    return model.distribution(np.array([context], dtype=np.int64))[0]


# ----- worked by hand -------------------------------------------------------------------------------
def test_witten_bell_matches_the_hand_worked_example() -> None:
    # Unigram: c = (2, 3, 0), N = 5, T = 2: P(w) = (c(w) + T/3) / (N + T) = 8/21, 11/21, 2/21.
    model = NGramModel(2, 3, "witten_bell").fit(TRAIN)
    unigram = [Fraction(8, 21), Fraction(11, 21), Fraction(2, 21)]
    np.testing.assert_allclose(_distribution(model, []), [float(p) for p in unigram], rtol=0, atol=1e-15)
    # After 0: c(0 1) = 2, c(0) = 2, T(0) = 1: P(w | 0) = (c(0 w) + P(w)) / 3 = 8/63, 53/63, 2/63.
    np.testing.assert_allclose(_distribution(model, [0]), [8 / 63, 53 / 63, 2 / 63], rtol=0, atol=1e-15)
    # After 1: c(1 0) = c(1 1) = 1, T(1) = 2: P(w | 1) = (c(1 w) + 2 P(w)) / 4 = 37/84, 43/84, 4/84.
    np.testing.assert_allclose(_distribution(model, [1]), [37 / 84, 43 / 84, 4 / 84], rtol=0, atol=1e-15)
    # Never seen as a context: the unigram distribution unchanged.
    np.testing.assert_allclose(_distribution(model, [2]), [float(p) for p in unigram], rtol=0, atol=1e-15)
    # log_prob of 1 0 2: the first token has no history (unigram), then bigrams.
    expected = np.log([11 / 21, 37 / 84, 2 / 63])
    np.testing.assert_allclose(model.log_prob([1, 0, 2]), expected, rtol=0, atol=1e-14)
    assert model.nll([1, 0, 2]) == pytest.approx(-expected.mean(), abs=1e-14)


def test_kneser_ney_matches_the_hand_worked_example() -> None:
    model = NGramModel(2, 3, "kneser_ney").fit(TRAIN)
    # Bigram counts (0 1): 2, (1 0): 1, (1 1): 1 -> n1 = 2, n2 = 1, D2 = 2 / (2 + 2) = 1/2.
    # Continuation counts N1+(. w): 0 -> {1}: 1, 1 -> {0, 1}: 2, 2: 0 -> n1 = n2 = 1, D1 = 1/3, total 3, T = 2.
    assert [table.discount for table in model.tables] == pytest.approx([1 / 3, 1 / 2], abs=1e-15)
    # P1(w) = max(N(w) - 1/3, 0) / 3 + (1/3)(2/3)(1/3) = 8/27, 17/27, 2/27.
    np.testing.assert_allclose(_distribution(model, []), [8 / 27, 17 / 27, 2 / 27], rtol=0, atol=1e-15)
    # After 0: max(c - 1/2, 0) / 2 + (1/2)(1/2) P1(w) = 2/27, 49/54, 1/54.
    np.testing.assert_allclose(_distribution(model, [0]), [2 / 27, 49 / 54, 1 / 54], rtol=0, atol=1e-15)


def test_add_k_matches_the_hand_worked_example() -> None:
    model = NGramModel(2, 3, "add_k", add_k=1.0).fit(TRAIN)
    np.testing.assert_allclose(_distribution(model, []), [3 / 8, 4 / 8, 1 / 8], rtol=0, atol=1e-15)
    np.testing.assert_allclose(_distribution(model, [1]), [2 / 5, 2 / 5, 1 / 5], rtol=0, atol=1e-15)
    np.testing.assert_allclose(_distribution(model, [2]), [1 / 3] * 3, rtol=0, atol=1e-15)  # unseen context
    assert model.name == "add-1 2-gram" and NGramModel(5, 9, "kneser_ney").name == "kneser-ney 5-gram"


# ----- dictionary references ------------------------------------------------------------------------
def _reference_log_probs(train: list[int], ids: list[int], order: int, vocab: int, smoothing: str) -> list[float]:
    """A direct transcription of the formulas with Counters of tuples and a Python loop over tokens."""
    raw = {m: Counter(tuple(train[i:i + m]) for i in range(len(train) - m + 1)) for m in range(1, order + 2)}
    tables = {}
    for m in range(1, order + 1):
        if smoothing == "kneser_ney" and m < order:
            counts = Counter(gram[1:] for gram in raw[m + 1])  # distinct left extensions
        else:
            counts = raw[m]
        totals, types = Counter(), Counter()
        for gram, count in counts.items():
            totals[gram[:-1]] += count
            types[gram[:-1]] += 1
        ones = sum(1 for c in counts.values() if c == 1)
        twos = sum(1 for c in counts.values() if c == 2)
        discount = max(ones / (ones + 2 * twos) if ones + twos else 0.0, MIN_DISCOUNT)
        tables[m] = (counts, totals, types, discount)
    result = []
    for t, word in enumerate(ids):
        probability = 1.0 / vocab
        for m in range(1, min(order, t + 1) + 1):
            counts, totals, types, discount = tables[m]
            history = tuple(ids[t - m + 1:t])
            if totals[history] == 0:
                continue
            count, total, distinct = counts[history + (word,)], totals[history], types[history]
            if smoothing == "witten_bell":
                probability = (count + distinct * probability) / (total + distinct)
            else:
                probability = (max(count - discount, 0) + discount * distinct * probability) / total
        result.append(math.log(probability))
    return result


@given(vocab=st.integers(2, 6), order=st.integers(1, 5), seed=st.integers(0, 2 ** 16),
       smoothing=st.sampled_from(["witten_bell", "kneser_ney"]))
def test_smoothed_ngrams_match_the_dictionary_reference(vocab: int, order: int, seed: int, smoothing: str) -> None:
    rng = np.random.default_rng(seed)
    # Skewed ids, and the last id held out of training: unseen contexts and unseen tokens both occur.
    train = rng.choice(vocab - 1, size=int(rng.integers(order, 80)), p=rng.dirichlet(np.ones(vocab - 1))).tolist()
    evaluation = rng.integers(0, vocab, size=40).tolist()
    model = NGramModel(order, vocab, smoothing).fit(train)
    expected = _reference_log_probs(train, evaluation, order, vocab, smoothing)
    np.testing.assert_allclose(model.log_prob(evaluation), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("smoothing", ["add_k", "witten_bell", "kneser_ney"])
@pytest.mark.parametrize("order", [1, 2, 3, 5, 6])
def test_every_distribution_sums_to_one_over_the_vocabulary(smoothing: str, order: int) -> None:
    rng = np.random.default_rng(order)
    vocab = 7
    train = rng.choice(5, size=300, p=[0.4, 0.3, 0.15, 0.1, 0.05])  # ids 5 and 6 never seen
    model = NGramModel(order, vocab, smoothing).fit(train)
    for length in range(order + 2):  # empty, short, exact and longer-than-needed contexts
        contexts = rng.integers(0, vocab, size=(50, length))
        contexts[:5] = train[:length] if length <= train.size else contexts[:5]  # a few seen ones
        distributions = model.distribution(contexts)
        assert distributions.shape == (50, vocab)
        assert np.all(distributions > 0)
        np.testing.assert_allclose(distributions.sum(axis=1), 1.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("smoothing", ["add_k", "witten_bell", "kneser_ney"])
def test_log_prob_is_the_distribution_after_each_prefix(smoothing: str) -> None:
    rng = np.random.default_rng(0)
    model = NGramModel(4, 5, smoothing).fit(rng.integers(0, 5, size=500))
    ids = rng.integers(0, 5, size=12)
    from_distributions = [np.log(_distribution(model, ids[:t].tolist())[ids[t]]) for t in range(ids.size)]
    np.testing.assert_allclose(model.log_prob(ids), from_distributions, rtol=0, atol=1e-13)


def test_a_count_model_of_the_right_order_reaches_the_markov_entropy_rate() -> None:
    chain = MarkovCorpus(alphabet_size=5, order=2, concentration=0.5, seed=4)
    train = chain.sample_symbols(1, 200_000, np.random.default_rng(1))[0]
    evaluation = chain.sample_symbols(1, 50_000, np.random.default_rng(2))[0]
    true_nll = -chain.log_likelihood(evaluation[None, :]).mean()  # positions >= 2
    for smoothing in ("witten_bell", "kneser_ney"):
        fitted = -NGramModel(3, 5, smoothing).fit(train).log_prob(evaluation)[2:].mean()
        assert 0 <= fitted - true_nll < 0.01, smoothing  # the excess is the estimation error, a small KL
    unigram = NGramModel(1, 5, "witten_bell").fit(train).nll(evaluation)
    assert unigram > true_nll + 0.1


# ----- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, message", [
    (lambda: NGramModel(3, 5, "good_turing"), "smoothing must be one of"),
    (lambda: NGramModel(0, 5), "order must be an integer >= 1"),
    (lambda: NGramModel(2, 0), "vocab_size must be"),
    (lambda: NGramModel(5, 50_257), "does not fit in int64; use order <= 4"),
    (lambda: NGramModel(2, 5, "add_k", add_k=0.0), "add_k must be > 0"),
    (lambda: NGramModel(3, 5).fit([0, 1]), "fewer than the order 3"),
    (lambda: NGramModel(2, 5).fit([0, 1, 5]), "id 5, outside the vocabulary 0..4"),
    (lambda: NGramModel(2, 5).fit([0, -1, 2]), "id -1, outside the vocabulary"),
    (lambda: NGramModel(2, 5).fit([0.0, 1.0]), "integer token ids"),
    (lambda: NGramModel(2, 5).fit([[0, 1], [1, 2]]), "1-D array"),
    (lambda: NGramModel(2, 5).fit([0, 1, 2]).log_prob([]), "ids is empty"),
    (lambda: NGramModel(2, 5).fit([0, 1, 2]).log_prob([0, 7]), "id 7, outside"),
    (lambda: NGramModel(2, 5).log_prob([0, 1]), "not fitted yet"),
    (lambda: NGramModel(2, 5).fit([0, 1, 2]).distribution(np.zeros((2, 2, 2), dtype=int)), "contexts must be"),
    (lambda: conditional_code_length_bits(b"abc", b"abc", "zip"), "compressor must be one of"),
    (lambda: conditional_code_length_bits(b"abc", b"", "bz2"), "eval_text is empty"),
    (lambda: bits_per_byte(1.0, 0), "num_bytes must be > 0"),
    (lambda: yardstick_table([0, 1, 2], [], 3, "abc", ""), "eval_ids is empty"),
])
def test_bad_input_gets_a_clear_error(make, message) -> None:
    with pytest.raises((ValueError, TypeError, RuntimeError), match=message):
        make()


# ----- compressors, units and the table -------------------------------------------------------------
def test_the_compressor_yardstick_is_conditional_on_the_training_text() -> None:
    rng = np.random.default_rng(0)
    train = bytes(rng.integers(97, 123, size=20_000).astype(np.uint8))
    fresh = bytes(rng.integers(97, 123, size=2_000).astype(np.uint8))
    repeated = train[5_000:7_000]  # already in the training text
    # lzma codes a copy as one long match; bz2's sorted contexts only pair each repeated byte with its
    # original (runs of two), so it saves much less: the weaker conditional coder of the two.
    for compressor, at_most in (("bz2", 0.9), ("lzma", 0.1)):
        fresh_bits = conditional_code_length_bits(train, fresh, compressor)
        # uniform over 26 letters: log2(26) = 4.70 bits per byte is the best any coder can do
        assert 4.70 * 2_000 < fresh_bits < 5.5 * 2_000
        assert conditional_code_length_bits(train, repeated, compressor) < at_most * fresh_bits
    assert conditional_code_length_bits("é" * 10, "é", "bz2") == conditional_code_length_bits(
        "é".encode() * 10, "é".encode(), "bz2")


def test_bits_per_byte_divides_total_nats_by_bytes_and_ln2() -> None:
    assert bits_per_byte(math.log(2) * 12, 3) == pytest.approx(4.0, abs=1e-15)


def test_yardstick_table_scores_every_token_and_converts_units() -> None:
    chain = MarkovCorpus(alphabet_size=6, order=1, concentration=0.3, seed=0)
    train_text = chain.text(20_000, np.random.default_rng(0))
    eval_text = "é" + chain.text(3_000, np.random.default_rng(1))
    vocab = "abcdefé"  # 'é' is 2 UTF-8 bytes and never appears in training
    ids = {character: index for index, character in enumerate(vocab)}
    train_ids, eval_ids = [ids[c] for c in train_text], [ids[c] for c in eval_text]
    rows = yardstick_table(train_ids, eval_ids, len(vocab), train_text, eval_text,
                           models=[("witten_bell", 1), ("kneser_ney", 2)], compressors=["bz2"])
    assert [row.name for row in rows] == ["witten-bell 1-gram", "kneser-ney 2-gram", "bz2 | train"]
    direct = NGramModel(2, len(vocab), "kneser_ney").fit(train_ids)
    total = -direct.log_prob(eval_ids).sum()
    assert rows[1].nats_per_token == pytest.approx(total / len(eval_ids), rel=1e-12)
    assert rows[1].bits_per_byte == pytest.approx(total / (len(eval_ids) + 1) / math.log(2), rel=1e-12)
    bz2_bits = conditional_code_length_bits(train_text, eval_text, "bz2")
    assert rows[2].bits_per_byte == pytest.approx(bz2_bits / (len(eval_ids) + 1), rel=1e-12)
    # the order-1 chain: a bigram model is close to the entropy rate, the unigram far above
    assert rows[1].nats_per_token < chain.entropy_rate() + 0.1 < rows[0].nats_per_token
    text = format_table(rows, model_loss=1.5)
    assert "kneser-ney 2-gram" in text and "this model" in text and f"{rows[0].nats_per_token:.4f}" in text


def test_corpus_yardsticks_read_the_split_the_run_sees(tmp_path, capsys) -> None:
    text = MarkovCorpus(alphabet_size=5, order=1, seed=2).text(5_000, np.random.default_rng(0))
    (tmp_path / "corpus.txt").write_text(text)
    data = {"path": str(tmp_path / "corpus.txt"), "tokenizer": "char", "seq_len": 16,
            "cache_dir": str(tmp_path / "cache")}
    rows = corpus_yardsticks({"data": data}, models=[("witten_bell", 2)], compressors=["bz2"])
    boundary = int(len(text) * 0.9)  # nanoGPT's 90/10 character split
    ids = [sorted(set(text[:boundary])).index(c) for c in text]
    vocab = len(set(text[:boundary])) + 5  # the characters, then five special tokens
    expected = yardstick_table(ids[:boundary], ids[boundary:], vocab, text[:boundary], text[boundary:],
                               models=[("witten_bell", 2)], compressors=["bz2"])
    assert rows == expected and isinstance(rows[0], Yardstick)
    (tmp_path / "run.toml").write_text(f"[data]\npath = '{data['path']}'\ntokenizer = 'char'\nseq_len = 16\n"
                                       f"cache_dir = '{data['cache_dir']}'\n")
    main(["--config", str(tmp_path / "run.toml")])
    printed = capsys.readouterr().out
    assert "witten-bell 5-gram" in printed and "lzma | train" in printed
