"""Exact and near-duplicate removal.

* Exact: documents whose *normalised* text (NFKC, lower case, whitespace collapsed) hashes equal.
* Near: MinHash (Broder 1997) over 5-gram word shingles with locality-sensitive hashing in 14 bands of 8
  rows (112 hash functions), the configuration of FineWeb (Penedo et al. 2024; datatrove's
  ``MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8)``). Two documents become candidates when
  all 8 rows of at least one band agree, which for Jaccard similarity ``s`` happens with probability
  ``1 - (1 - s**8)**14`` (:func:`candidate_probability`); candidates are joined into clusters (union-find)
  and one document per cluster is kept.

Hashing: each distinct word is hashed once (64-bit BLAKE2b); a shingle's hash is a random linear combination
of its word hashes, mixed and reduced modulo the prime ``p = 2**32 - 5``. The 112 "permutations" are the
universal hash functions ``h_i(x) = (a_i x + b_i) mod p`` with seeded ``a_i, b_i``; since ``x, a_i < 2**32``
all arithmetic is exact in uint64 and every permutation is one NumPy array operation over all shingles.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Sequence

import numpy as np

#: Mersenne-like prime just below 2**32: products of two values below it fit in uint64 without overflow.
HASH_PRIME = np.uint64(4_294_967_291)
_WORD_PATTERN = re.compile(r"\w+")
_SPLITMIX_MULTIPLIERS = (np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))


def normalize_text(text: str) -> str:
    """Normalise for duplicate detection: Unicode NFKC, lower case, runs of whitespace -> one space."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def exact_hash(text: str) -> str:
    """Hex SHA-1 of the normalised text (identical for texts differing only in case or spacing)."""
    return hashlib.sha1(normalize_text(text).encode("utf-8")).hexdigest()


def exact_dedup(documents: Sequence[str]) -> list[int]:
    """Indices of the documents to keep: the first of every group with the same normalised text."""
    seen: set[str] = set()
    keep: list[int] = []
    for index, text in enumerate(documents):
        digest = exact_hash(text)
        if digest not in seen:
            seen.add(digest)
            keep.append(index)
    return keep


def candidate_probability(similarity: float | np.ndarray, bands: int = 14, rows: int = 8) -> float | np.ndarray:
    """Probability that two documents of Jaccard ``similarity`` share a band: ``1 - (1 - s**rows)**bands``."""
    s = np.asarray(similarity, dtype=np.float64)
    if np.any((s < 0) | (s > 1)):
        raise ValueError("Jaccard similarity must lie in [0, 1]")
    probability = 1.0 - (1.0 - s**rows) ** bands
    return float(probability) if probability.ndim == 0 else probability


def shingle_words(text: str) -> list[str]:
    """Words used for shingles: ``\\w+`` runs of the normalised text (punctuation is ignored)."""
    return _WORD_PATTERN.findall(normalize_text(text))


def shingle_set(text: str, n_gram: int = 5) -> set[tuple[str, ...]]:
    """The set of word ``n_gram``-shingles of ``text`` (a shorter non-empty text is one shingle)."""
    words = shingle_words(text)
    if 0 < len(words) < n_gram:
        return {tuple(words)}
    return {tuple(words[i : i + n_gram]) for i in range(len(words) - n_gram + 1)}


def jaccard_similarity(text_a: str, text_b: str, n_gram: int = 5) -> float:
    """Exact Jaccard similarity of the two texts' shingle sets (1.0 for two texts without shingles)."""
    a, b = shingle_set(text_a, n_gram), shingle_set(text_b, n_gram)
    union = len(a | b)
    return 1.0 if union == 0 else len(a & b) / union


def _mix64(values: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: scrambles uint64 values so that every output bit depends on every input bit."""
    values = values ^ (values >> np.uint64(30))
    values = values * _SPLITMIX_MULTIPLIERS[0]
    values = values ^ (values >> np.uint64(27))
    values = values * _SPLITMIX_MULTIPLIERS[1]
    return values ^ (values >> np.uint64(31))


class _UnionFind:
    """Disjoint sets over ``0..n-1`` with path halving (to cluster candidate pairs)."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, item: int) -> int:
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, a: int, b: int) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            # The smaller index becomes the root, so a cluster is named by (and keeps) its first document.
            self.parent[max(root_a, root_b)] = min(root_a, root_b)


@dataclass
class MinHashDeduplicator:
    """MinHash + LSH near-duplicate detector (defaults: 5-gram shingles, 14 bands x 8 rows, seed 0).

    Attributes:
        n_gram: words per shingle.
        bands: LSH bands.
        rows: hash functions per band (``bands * rows`` permutations in all).
        seed: fixes the permutation coefficients and the shingle mixing constants.
        max_rows_per_block: shingles hashed per NumPy block (bounds memory at ``8 * rows * bands`` bytes each).
    """

    n_gram: int = 5
    bands: int = 14
    rows: int = 8
    seed: int = 0
    max_rows_per_block: int = 32_768

    def __post_init__(self) -> None:
        if min(self.n_gram, self.bands, self.rows) < 1:
            raise ValueError("n_gram, bands and rows must be positive")
        rng = np.random.default_rng(self.seed)
        n_hashes = self.bands * self.rows
        prime = int(HASH_PRIME)
        self.multipliers = rng.integers(1, prime, size=n_hashes, dtype=np.uint64)
        self.offsets = rng.integers(0, prime, size=n_hashes, dtype=np.uint64)
        # Odd 64-bit weights combine the n word hashes of a shingle into one value (order-sensitive).
        self.position_weights = rng.integers(0, 2**63, size=self.n_gram, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        self._word_hash_cache: dict[str, int] = {}

    @property
    def n_hashes(self) -> int:
        """Number of hash functions (``bands * rows``)."""
        return self.bands * self.rows

    def _word_hashes(self, words: list[str]) -> np.ndarray:
        cache = self._word_hash_cache
        values = []
        for word in words:
            value = cache.get(word)
            if value is None:
                value = int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")
                cache[word] = value
            values.append(value)
        return np.array(values, dtype=np.uint64)

    def shingle_hashes(self, text: str) -> np.ndarray:
        """Hash every shingle of ``text`` once into ``[0, p)`` (uint64 array; empty for a text without words)."""
        words = shingle_words(text)
        if not words:
            return np.empty(0, dtype=np.uint64)
        word_hashes = self._word_hashes(words)
        width = min(self.n_gram, len(words))
        windows = np.lib.stride_tricks.sliding_window_view(word_hashes, width)
        # uint64 products wrap modulo 2**64 by design (a hash, not arithmetic); NumPy arrays do not warn.
        combined = (windows * self.position_weights[:width]).sum(axis=1, dtype=np.uint64)
        return _mix64(combined) % HASH_PRIME

    def _block_minimum(self, hashes: np.ndarray) -> np.ndarray:
        """Minimum over rows of ``(a x + b) mod p`` for every hash function; ``hashes`` has shape (S,)."""
        permuted = (hashes[:, None] * self.multipliers[None, :] + self.offsets[None, :]) % HASH_PRIME
        return permuted.min(axis=0)

    def signatures(self, documents: Sequence[str]) -> np.ndarray:
        """MinHash signatures, shape ``(len(documents), bands * rows)``, uint32.

        A document without words gets the sentinel ``p`` in every row (so all empty documents collide).
        Documents are hashed in blocks of about ``max_rows_per_block`` shingles; within a block one
        ``np.minimum.reduceat`` takes every document's minimum at once.
        """
        n_docs = len(documents)
        result = np.full((n_docs, self.n_hashes), int(HASH_PRIME), dtype=np.uint64)
        block_docs: list[int] = []
        block_hashes: list[np.ndarray] = []
        block_size = 0

        def flush() -> None:
            nonlocal block_size
            if not block_docs:
                return
            lengths = np.array([len(h) for h in block_hashes])
            starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
            stacked = np.concatenate(block_hashes)
            permuted = (stacked[:, None] * self.multipliers[None, :] + self.offsets[None, :]) % HASH_PRIME
            result[block_docs] = np.minimum.reduceat(permuted, starts, axis=0)
            block_docs.clear()
            block_hashes.clear()
            block_size = 0

        for index, text in enumerate(documents):
            hashes = self.shingle_hashes(text)
            if len(hashes) == 0:
                continue
            if len(hashes) > self.max_rows_per_block:  # one long document: running minimum over chunks
                chunks = [
                    self._block_minimum(hashes[start : start + self.max_rows_per_block])
                    for start in range(0, len(hashes), self.max_rows_per_block)
                ]
                result[index] = np.minimum.reduce(chunks)
                continue
            if block_size + len(hashes) > self.max_rows_per_block:
                flush()
            block_docs.append(index)
            block_hashes.append(hashes)
            block_size += len(hashes)
        flush()
        return result.astype(np.uint32)

    def band_keys(self, signatures: np.ndarray) -> np.ndarray:
        """Bucket id of every document in every band, shape ``(n_docs, bands)`` (equal id = same bucket)."""
        n_docs = signatures.shape[0]
        keys = np.empty((n_docs, self.bands), dtype=np.int64)
        for band in range(self.bands):
            band_rows = signatures[:, band * self.rows : (band + 1) * self.rows]
            keys[:, band] = np.unique(band_rows, axis=0, return_inverse=True)[1].reshape(-1)
        return keys

    def is_candidate(self, signature_a: np.ndarray, signature_b: np.ndarray) -> bool:
        """Whether two signatures agree on all rows of at least one band."""
        equal_rows = (signature_a == signature_b).reshape(self.bands, self.rows)
        return bool(equal_rows.all(axis=1).any())

    def candidate_pairs(self, documents: Sequence[str]) -> set[tuple[int, int]]:
        """All pairs ``(i, j)``, ``i < j``, that share a bucket in some band (quadratic in bucket size)."""
        keys = self.band_keys(self.signatures(documents))
        pairs: set[tuple[int, int]] = set()
        for band in range(self.bands):
            for members in _groups(keys[:, band]):
                pairs.update((int(a), int(b)) for i, a in enumerate(members) for b in members[i + 1 :])
        return pairs

    def cluster_labels(self, documents: Sequence[str]) -> np.ndarray:
        """Cluster id of every document: the smallest index of its connected component of candidate pairs."""
        keys = self.band_keys(self.signatures(documents))
        union_find = _UnionFind(len(documents))
        for band in range(self.bands):
            for members in _groups(keys[:, band]):
                # Chaining consecutive members links the whole bucket without listing every pair.
                for a, b in zip(members[:-1], members[1:]):
                    union_find.union(int(a), int(b))
        return np.array([union_find.find(i) for i in range(len(documents))], dtype=np.int64)

    def clusters(self, documents: Sequence[str]) -> list[list[int]]:
        """Clusters of near duplicates with at least two members, each sorted, ordered by first member."""
        labels = self.cluster_labels(documents)
        return [sorted(map(int, members)) for members in _groups(labels)]

    def keep_indices(self, documents: Sequence[str]) -> list[int]:
        """Indices of the documents to keep: the first document of every cluster (and every singleton)."""
        labels = self.cluster_labels(documents)
        return np.flatnonzero(labels == np.arange(len(documents))).tolist()


def _groups(labels: np.ndarray) -> list[np.ndarray]:
    """Indices grouped by equal label, only groups with two or more members."""
    if len(labels) == 0:
        return []
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    boundaries = np.flatnonzero(np.diff(sorted_labels)) + 1
    return [group for group in np.split(order, boundaries) if len(group) > 1]


def minhash_dedup(documents: Sequence[str], seed: int = 0, n_gram: int = 5, bands: int = 14, rows: int = 8) -> list[int]:
    """Indices of documents to keep after MinHash near-dedup (convenience wrapper of :class:`MinHashDeduplicator`)."""
    return MinHashDeduplicator(n_gram=n_gram, bands=bands, rows=rows, seed=seed).keep_indices(documents)
