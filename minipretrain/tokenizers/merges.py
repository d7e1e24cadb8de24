"""Learning BPE merges with incremental pair counts (shared by byte-level BPE and WordPiece training).

The naive loop recounts every adjacent pair of the corpus after each merge: O(corpus) per merge. Here we
count once, then after merging pair (a, b) we only revisit the words that contain it, subtract their old
pairs and add their new ones. A max-heap of (count, pair) with lazy deletion finds the next pair: stale
entries (whose count changed since they were pushed) are skipped when popped.

Counting follows minbpe: every adjacent pair is counted, so "aaa" holds the pair (a, a) twice; a merge
replaces non-overlapping occurrences from left to right.

Tie-breaking (deterministic, independent of corpus order): the most frequent pair wins; among equally
frequent pairs the smallest ``(left id, right id)`` wins. For "aaabdaaabac" this gives the Wikipedia
example's merges: aa -> Z, ab -> Y, ZY -> X.
"""
from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence

Pair = tuple[int, int]


def merge_pair(symbols: Sequence[int], pair: Pair, new_id: int) -> list[int]:
    """Replace non-overlapping occurrences of ``pair`` in ``symbols`` by ``new_id``, left to right."""
    # >>> exercise: bpe-merge-step
    left, right = pair
    merged: list[int] = []
    index, length = 0, len(symbols)
    while index < length:
        if index + 1 < length and symbols[index] == left and symbols[index + 1] == right:
            merged.append(new_id)
            index += 2
        else:
            merged.append(symbols[index])
            index += 1
    return merged
    # <<< exercise


def learn_merges(word_counts: Mapping[tuple[int, ...], int], num_merges: int, first_new_id: int) -> list[Pair]:
    """Learn up to ``num_merges`` merges from words (symbol-id tuples) and their frequencies.

    The i-th merge creates id ``first_new_id + i``. Training stops early when no pair is left.
    """
    words: list[list[int]] = [list(word) for word in word_counts]
    frequencies: list[int] = list(word_counts.values())
    pair_counts: dict[Pair, int] = {}
    words_with_pair: dict[Pair, set[int]] = {}
    for word_index, word in enumerate(words):
        frequency = frequencies[word_index]
        for pair in zip(word, word[1:]):
            pair_counts[pair] = pair_counts.get(pair, 0) + frequency
            words_with_pair.setdefault(pair, set()).add(word_index)

    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)
    merges: list[Pair] = []
    while len(merges) < num_merges and heap:
        negative_count, pair = heapq.heappop(heap)
        if pair_counts.get(pair, 0) != -negative_count:
            continue  # stale entry: the count changed after it was pushed
        new_id = first_new_id + len(merges)
        merges.append(pair)
        touched: set[Pair] = set()
        for word_index in words_with_pair.pop(pair, ()):
            old_word = words[word_index]
            new_word = merge_pair(old_word, pair, new_id)
            if len(new_word) == len(old_word):
                continue  # the index was stale: an earlier merge already consumed the pair here
            frequency = frequencies[word_index]
            for old_pair in zip(old_word, old_word[1:]):
                pair_counts[old_pair] -= frequency
                touched.add(old_pair)
            for new_pair in zip(new_word, new_word[1:]):
                pair_counts[new_pair] = pair_counts.get(new_pair, 0) + frequency
                words_with_pair.setdefault(new_pair, set()).add(word_index)
                touched.add(new_pair)
            words[word_index] = new_word
        pair_counts.pop(pair, None)
        touched.discard(pair)
        for changed in touched:
            count = pair_counts[changed]
            if count > 0:
                heapq.heappush(heap, (-count, changed))
            else:
                del pair_counts[changed]
                words_with_pair.pop(changed, None)
    return merges
