"""Gopher's quality and repetition rules (Rae et al. 2021, "Scaling Language Models: Methods, Analysis &
Insights from Training Gopher", appendix A.1.1 and Table A1).

Thresholds and rule definitions follow datatrove's reference implementation
(huggingface/datatrove, ``src/datatrove/pipeline/filters/gopher_quality_filter.py`` and
``gopher_repetition_filter.py``); rule names are datatrove's, so removal rates can be compared with theirs.
The code is our own. Differences from the reference:

* words come from :func:`~minipretrain.data.quality.base.split_words` (a regex), not NLTK's Treebank
  tokenizer, so word counts differ slightly on contractions, URLs and punctuation runs;
* a "symbol" token is one without a letter, digit or underscore (datatrove: made only of characters of its
  punctuation set);
* an empty document has no words; its ratios are defined as 0 (or +inf when a counted symbol is present)
  instead of raising ``ZeroDivisionError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .base import FilterDecision, duplicate_counts, first_failure, split_words

#: Gopher's stop words: a document needs at least two occurrences (datatrove: case-sensitive match).
GOPHER_STOP_WORDS: frozenset[str] = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})


def _ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator`` where an empty denominator gives 0 (nothing) or +inf (something)."""
    if denominator == 0:
        return 0.0 if numerator == 0 else float("inf")
    return numerator / denominator


@dataclass
class GopherQualityFilter:
    """Gopher's document quality rules, checked in datatrove's order (first failure is reported).

    Rules and thresholds (datatrove ``GopherQualityFilter`` defaults, from Rae et al. 2021 A.1.1):

    ``gopher_short_doc``            fewer than 50 non-symbol words
    ``gopher_long_doc``             more than 100,000 non-symbol words
    ``gopher_below_avg_threshold``  mean non-symbol word length < 3 characters
    ``gopher_above_avg_threshold``  mean non-symbol word length > 10 characters
    ``gopher_too_many_hashes``      count of "#" / words > 0.1
    ``gopher_too_many_ellipsis``    count of "..." and "…" / words > 0.1
    ``gopher_too_many_bullets``     > 90% of lines start with "•" or "-" (after leading spaces)
    ``gopher_too_many_end_ellipsis`` > 30% of lines end with "..." or "…"
    ``gopher_below_alpha_threshold`` < 80% of words contain an alphabetic character
    ``gopher_enough_stop_words``    fewer than 2 stop words (the, be, to, of, and, that, have, with)

    "words" in the ratios are all tokens, symbols included, as in datatrove.
    """

    name = "gopher_quality"
    rule_names: ClassVar[tuple[str, ...]] = (
        "gopher_short_doc",
        "gopher_long_doc",
        "gopher_below_avg_threshold",
        "gopher_above_avg_threshold",
        "gopher_too_many_hashes",
        "gopher_too_many_ellipsis",
        "gopher_too_many_bullets",
        "gopher_too_many_end_ellipsis",
        "gopher_below_alpha_threshold",
        "gopher_enough_stop_words",
    )

    # The thresholds; the defaults are the reference's.
    min_doc_words: int = 50
    max_doc_words: int = 100_000
    min_avg_word_length: float = 3
    max_avg_word_length: float = 10
    max_symbol_word_ratio: float = 0.1
    max_bullet_lines_ratio: float = 0.9
    max_ellipsis_lines_ratio: float = 0.3
    min_alpha_words_ratio: float = 0.8
    min_stop_words: int = 2
    stop_words: frozenset[str] = GOPHER_STOP_WORDS

    def measure(self, text: str) -> dict[str, float]:
        """Return the statistics the rules threshold (counts, ratios, mean word length)."""
        words = split_words(text)
        n_words = len(words)
        word_lengths = [len(w) for w in words if any(ch.isalnum() or ch == "_" for ch in w)]
        lines = text.splitlines()
        n_lines = len(lines)
        return {
            "n_words": float(n_words),
            "n_non_symbol_words": float(len(word_lengths)),
            # An empty document has no mean word length; 0 makes it fail the lower bound only.
            "mean_word_length": float(np.mean(word_lengths)) if word_lengths else 0.0,
            "hash_ratio": _ratio(text.count("#"), n_words),
            "ellipsis_ratio": _ratio(text.count("...") + text.count("…"), n_words),
            "bullet_lines_ratio": _ratio(sum(line.lstrip().startswith(("•", "-")) for line in lines), n_lines),
            "end_ellipsis_lines_ratio": _ratio(
                sum(line.rstrip().endswith(("...", "…")) for line in lines), n_lines
            ),
            # No words at all: no evidence of alphabetic text, so the ratio is 0 (fails).
            "alpha_words_ratio": sum(any(ch.isalpha() for ch in w) for w in words) / n_words if n_words else 0.0,
            "n_stop_words": float(sum(w in self.stop_words for w in words)),
        }

    def rule_failures(self, text: str) -> dict[str, bool]:
        """Evaluate every rule independently; ``True`` means the document fails it."""
        stats = self.measure(text)
        return {
            "gopher_short_doc": stats["n_non_symbol_words"] < self.min_doc_words,
            "gopher_long_doc": stats["n_non_symbol_words"] > self.max_doc_words,
            "gopher_below_avg_threshold": stats["mean_word_length"] < self.min_avg_word_length,
            "gopher_above_avg_threshold": stats["mean_word_length"] > self.max_avg_word_length,
            "gopher_too_many_hashes": stats["hash_ratio"] > self.max_symbol_word_ratio,
            "gopher_too_many_ellipsis": stats["ellipsis_ratio"] > self.max_symbol_word_ratio,
            "gopher_too_many_bullets": stats["bullet_lines_ratio"] > self.max_bullet_lines_ratio,
            "gopher_too_many_end_ellipsis": stats["end_ellipsis_lines_ratio"] > self.max_ellipsis_lines_ratio,
            "gopher_below_alpha_threshold": stats["alpha_words_ratio"] < self.min_alpha_words_ratio,
            "gopher_enough_stop_words": stats["n_stop_words"] < self.min_stop_words,
        }

    def filter(self, text: str) -> FilterDecision:
        """Keep/drop ``text``; the failed rule is the first in :attr:`rule_names` order, as in the reference."""
        failed = first_failure(self.rule_names, self.rule_failures(text))
        return FilterDecision(keep=failed is None, failed_rule=failed, text=text)


def _ngram_ids(word_ids: np.ndarray, n: int) -> np.ndarray:
    """Map every window of ``n`` consecutive word ids to a dense id (equal windows share an id)."""
    windows = np.lib.stride_tricks.sliding_window_view(word_ids, n)
    _, inverse = np.unique(windows, axis=0, return_inverse=True)
    return inverse.reshape(-1)


def _window_sums(values: np.ndarray, n: int) -> np.ndarray:
    """Sum of every window of ``n`` consecutive ``values`` (via a cumulative sum)."""
    cumulative = np.concatenate(([0], np.cumsum(values)))
    return cumulative[n:] - cumulative[:-n]


def top_ngram_char_count(word_ids: np.ndarray, word_lengths: np.ndarray, n: int) -> int:
    """Characters covered by the most frequent ``n``-gram: ``len(" ".join(ngram)) * count``.

    Ties go to the n-gram seen first (as ``Counter.most_common`` in the reference). Returns 0 when the
    document has fewer than ``n`` words.
    """
    if len(word_ids) < n:
        return 0
    ids = _ngram_ids(word_ids, n)
    counts = np.bincount(ids)
    first_position = np.full(counts.shape, len(ids), dtype=np.int64)
    np.minimum.at(first_position, ids, np.arange(len(ids)))
    most_frequent = np.flatnonzero(counts == counts.max())
    winner = most_frequent[np.argmin(first_position[most_frequent])]
    ngram_chars = _window_sums(word_lengths, n)[first_position[winner]] + (n - 1)  # joined by spaces
    return int(ngram_chars * counts[winner])


def duplicated_ngram_char_count(word_ids: np.ndarray, word_lengths: np.ndarray, n: int) -> int:
    """Characters in repeated ``n``-grams, counted as Gopher / datatrove's ``find_all_duplicate``.

    Scan left to right; an n-gram seen before adds its characters (words joined without spaces, as the
    current reference) and the scan jumps past it, so overlapping repeats are not counted twice.
    """
    if len(word_ids) < n:
        return 0
    ids = _ngram_ids(word_ids, n).tolist()
    chars = _window_sums(word_lengths, n).tolist()
    seen = [False] * (max(ids) + 1)
    repeated_chars = 0
    position = 0
    last_start = len(ids)
    while position < last_start:  # sequential by definition: the jump depends on earlier matches
        ngram = ids[position]
        if seen[ngram]:
            repeated_chars += chars[position]
            position += n
        else:
            seen[ngram] = True
            position += 1
    return repeated_chars


@dataclass
class GopherRepetitionFilter:
    """Gopher's repetition rules (Rae et al. 2021, Table A1), in datatrove's order and with its thresholds.

    ``dup_para_frac``          duplicated paragraphs / paragraphs > 0.30 (paragraphs split on 2+ newlines)
    ``dup_para_char_frac``     characters in duplicated paragraphs / characters > 0.20
    ``dup_line_frac``          duplicated lines / lines > 0.30 (lines split on 1+ newlines)
    ``dup_line_char_frac``     characters in duplicated lines / characters > 0.20
    ``top_{2,3,4}_gram``       characters of the most frequent n-gram / characters > 0.20, 0.18, 0.16
    ``duplicated_{5..10}_n_grams`` characters in repeated n-grams / characters > 0.15, 0.14, ..., 0.10

    As in the reference, the top-n-gram rule counts the most frequent n-gram even when it occurs once, so a
    very short document fails it (such documents fail the quality filter's minimum length anyway).
    """

    name = "gopher_repetition"

    # The thresholds; the defaults are Table A1's.
    dup_line_frac: float = 0.3
    dup_para_frac: float = 0.3
    dup_line_char_frac: float = 0.2
    dup_para_char_frac: float = 0.2
    top_n_grams: tuple[tuple[int, float], ...] = ((2, 0.20), (3, 0.18), (4, 0.16))
    dup_n_grams: tuple[tuple[int, float], ...] = (
            (5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10),
        )

    def __post_init__(self) -> None:
        self.rule_names: tuple[str, ...] = (
            "dup_para_frac",
            "dup_para_char_frac",
            "dup_line_frac",
            "dup_line_char_frac",
            *(f"top_{n}_gram" for n, _ in self.top_n_grams),
            *(f"duplicated_{n}_n_grams" for n, _ in self.dup_n_grams),
        )

    def measure(self, text: str) -> dict[str, float]:
        """Return every ratio the rules threshold, keyed by rule name."""
        n_chars = len(text)
        paragraphs = re.split(r"\n{2,}", text.strip())
        para_dups, para_dup_chars = duplicate_counts(paragraphs)
        lines = re.split(r"\n+", text)
        line_dups, line_dup_chars = duplicate_counts(lines)
        stats = {
            "dup_para_frac": para_dups / len(paragraphs),
            "dup_para_char_frac": _ratio(para_dup_chars, n_chars),
            "dup_line_frac": line_dups / len(lines),
            "dup_line_char_frac": _ratio(line_dup_chars, n_chars),
        }
        words = split_words(text)
        vocabulary: dict[str, int] = {}
        word_ids = np.array([vocabulary.setdefault(w, len(vocabulary)) for w in words], dtype=np.int64)
        word_lengths = np.array([len(w) for w in words], dtype=np.int64)
        for n, _ in self.top_n_grams:
            stats[f"top_{n}_gram"] = _ratio(top_ngram_char_count(word_ids, word_lengths, n), n_chars)
        for n, _ in self.dup_n_grams:
            stats[f"duplicated_{n}_n_grams"] = _ratio(
                duplicated_ngram_char_count(word_ids, word_lengths, n), n_chars
            )
        return stats

    def thresholds(self) -> dict[str, float]:
        """Maximum allowed value of each rule's ratio (a document fails when its ratio is larger)."""
        limits = {
            "dup_para_frac": self.dup_para_frac,
            "dup_para_char_frac": self.dup_para_char_frac,
            "dup_line_frac": self.dup_line_frac,
            "dup_line_char_frac": self.dup_line_char_frac,
        }
        limits.update({f"top_{n}_gram": limit for n, limit in self.top_n_grams})
        limits.update({f"duplicated_{n}_n_grams": limit for n, limit in self.dup_n_grams})
        return limits

    def rule_failures(self, text: str) -> dict[str, bool]:
        """Evaluate every rule independently; ``True`` means the document fails it."""
        stats = self.measure(text)
        return {rule: stats[rule] > limit for rule, limit in self.thresholds().items()}

    def filter(self, text: str) -> FilterDecision:
        """Keep/drop ``text``; the failed rule is the first in :attr:`rule_names` order, as in the reference."""
        failed = first_failure(self.rule_names, self.rule_failures(text))
        return FilterDecision(keep=failed is None, failed_rule=failed, text=text)
