"""Exact and MinHash near-duplicate detection."""

from __future__ import annotations

import numpy as np
import pytest

from minipretrain.data.quality import (
    MinHashDeduplicator,
    candidate_probability,
    exact_dedup,
    jaccard_similarity,
    minhash_dedup,
    normalize_text,
)


def test_exact_dedup_ignores_case_and_spacing():
    docs = ["Hello  world.\n", "hello world.", "Hello world!", "HELLO\tWORLD."]
    assert normalize_text(docs[0]) == "hello world."
    assert exact_dedup(docs) == [0, 2]


def test_candidate_probability_formula():
    assert candidate_probability(0.0) == 0.0 and candidate_probability(1.0) == 1.0
    assert candidate_probability(0.8) == pytest.approx(1 - (1 - 0.8**8) ** 14)
    values = candidate_probability(np.linspace(0, 1, 11))
    assert np.all(np.diff(values) >= 0)  # more similar, more likely a candidate
    with pytest.raises(ValueError):
        candidate_probability(1.5)


def pair_with_jaccard(shared: int, own: int, pair_index: int) -> tuple[str, str]:
    """Two documents of unique words: ``shared`` words in common, then ``own`` words each.

    With 5-gram shingles: shared shingles = shared - 4; each document has shared + own - 4 shingles, so
    Jaccard = (shared - 4) / (shared + 2 * own - 4). Words are unique per pair, so pairs are independent.
    """
    words = [f"w{pair_index}x{i}" for i in range(shared + 2 * own)]
    common = words[:shared]
    return " ".join(common + words[shared : shared + own]), " ".join(common + words[shared + own :])


@pytest.mark.parametrize("shared, own", [(84, 40), (94, 20), (104, 15), (144, 10), (164, 5)])
def test_candidate_rate_matches_band_formula(shared, own):
    similarity = (shared - 4) / (shared + 2 * own - 4)
    a, b = pair_with_jaccard(shared, own, 0)
    assert jaccard_similarity(a, b) == pytest.approx(similarity)
    n_pairs = 300
    dedup = MinHashDeduplicator(seed=123)
    docs = [text for index in range(n_pairs) for text in pair_with_jaccard(shared, own, index)]
    signatures = dedup.signatures(docs)
    hits = np.array([dedup.is_candidate(signatures[2 * i], signatures[2 * i + 1]) for i in range(n_pairs)])
    expected = candidate_probability(similarity)
    standard_error = np.sqrt(expected * (1 - expected) / n_pairs)
    # 4 standard errors (plus a little for the binomial's discreteness): a false alarm has p < 1e-4.
    assert abs(hits.mean() - expected) <= 4 * standard_error + 1 / n_pairs, (similarity, hits.mean(), expected)


def test_row_agreement_estimates_jaccard():
    # Each of the 112 rows agrees with probability s: the mean agreement over many pairs is about s.
    dedup = MinHashDeduplicator(seed=5)
    shared, own, n_pairs = 54, 25, 60
    similarity = (shared - 4) / (shared + 2 * own - 4)
    docs = [t for i in range(n_pairs) for t in pair_with_jaccard(shared, own, i)]
    sig = dedup.signatures(docs)
    agreement = (sig[0::2] == sig[1::2]).mean()
    standard_error = np.sqrt(similarity * (1 - similarity) / (n_pairs * dedup.n_hashes))
    assert abs(agreement - similarity) < 4 * standard_error


def test_signatures_are_seeded_and_blocking_does_not_change_them():
    docs = [" ".join(f"t{i}_{j}" for j in range(30 + i)) for i in range(20)] + ["", "short text"]
    one = MinHashDeduplicator(seed=1).signatures(docs)
    assert one.shape == (22, 112) and one.dtype == np.uint32
    assert np.array_equal(one, MinHashDeduplicator(seed=1).signatures(docs))
    assert not np.array_equal(one, MinHashDeduplicator(seed=2).signatures(docs))
    tiny_blocks = MinHashDeduplicator(seed=1, max_rows_per_block=7).signatures(docs)
    assert np.array_equal(one, tiny_blocks)
    # Direct definition for one document: the minimum of (a x + b) mod p over its shingle hashes.
    dedup = MinHashDeduplicator(seed=1)
    hashes = dedup.shingle_hashes(docs[3]).astype(object)
    expected = [min((int(a) * h + int(b)) % 4_294_967_291 for h in hashes) for a, b in zip(dedup.multipliers, dedup.offsets)]
    assert one[3].tolist() == expected


def test_clusters_and_keep_indices():
    base = " ".join(f"word{i}" for i in range(200))
    near = base.replace("word100 ", "changed ")  # Jaccard about 0.95
    other = " ".join(f"other{i}" for i in range(200))
    docs = [base, other, near, base.upper(), other + " extra tail words here"]
    dedup = MinHashDeduplicator(seed=0)
    assert dedup.clusters(docs) == [[0, 2, 3], [1, 4]]
    assert dedup.keep_indices(docs) == [0, 1]
    assert minhash_dedup(docs) == [0, 1]
    assert (0, 2) in dedup.candidate_pairs(docs) and (0, 1) not in dedup.candidate_pairs(docs)


def test_invalid_configuration_is_rejected():
    with pytest.raises(ValueError):
        MinHashDeduplicator(bands=0)
