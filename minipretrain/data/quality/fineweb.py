"""FineWeb's additional heuristic rules (Penedo et al. 2024, "The FineWeb Datasets"), as datatrove's
``FineWebQualityFilter`` (huggingface/datatrove ``src/datatrove/pipeline/filters/fineweb_quality_filter.py``).

Thresholds and rule order are the reference's defaults; the code is ours. Lines are ``text.split("\\n")``
(empty lines included, as in the reference):

``line_punct_ratio``  fraction of lines ending in . ' " ! ? is <= 0.12 -> drop
``short_line_ratio``  fraction of lines of at most 30 characters is >= 0.67 -> drop
``char_dup_ratio``    characters in duplicated non-empty lines / characters without newlines >= 0.01 -> drop
``list_ratio``        newlines / words > 0.3 -> drop

Difference from the reference: words for ``list_ratio`` come from our regex splitter instead of NLTK; a
document without characters or words gets ratio 0 or +inf instead of raising ``ZeroDivisionError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .base import FilterDecision, duplicate_counts, first_failure, split_words

LINE_END_PUNCTUATION = (".", "'", '"', "!", "?")


@dataclass
class FineWebQualityFilter:
    """FineWeb's line-punctuation, short-line, duplicated-line and list rules (see the module docstring)."""

    name = "fineweb_quality"
    rule_names: ClassVar[tuple[str, ...]] = ("line_punct_ratio", "short_line_ratio", "char_dup_ratio", "list_ratio")

    # The thresholds; the defaults are the reference's.
    line_punct_threshold: float = 0.12
    line_punct_exclude_zero: bool = False
    short_line_threshold: float = 0.67
    short_line_length: int = 30
    char_duplicates_ratio: float = 0.01
    new_line_ratio: float = 0.3

    def measure(self, text: str) -> dict[str, float]:
        """Return the four ratios the rules threshold, keyed by rule name."""
        lines = text.split("\n")
        non_empty_lines = [line for line in lines if line.strip()]
        chars_without_newlines = len(text) - text.count("\n")
        duplicated_chars = duplicate_counts(non_empty_lines)[1]
        n_words = len(split_words(text))
        newlines = text.count("\n")
        return {
            "line_punct_ratio": sum(line.endswith(LINE_END_PUNCTUATION) for line in lines) / len(lines),
            "short_line_ratio": sum(len(line) <= self.short_line_length for line in lines) / len(lines),
            "char_dup_ratio": duplicated_chars / chars_without_newlines if chars_without_newlines else 0.0,
            "list_ratio": newlines / n_words if n_words else (0.0 if newlines == 0 else float("inf")),
        }

    def rule_failures(self, text: str) -> dict[str, bool]:
        """Evaluate every rule independently; ``True`` means the document fails it."""
        stats = self.measure(text)
        punct = stats["line_punct_ratio"]
        return {
            "line_punct_ratio": punct <= self.line_punct_threshold
            and not (punct == 0 and self.line_punct_exclude_zero),
            "short_line_ratio": stats["short_line_ratio"] >= self.short_line_threshold,
            "char_dup_ratio": stats["char_dup_ratio"] >= self.char_duplicates_ratio,
            "list_ratio": stats["list_ratio"] > self.new_line_ratio,
        }

    def filter(self, text: str) -> FilterDecision:
        """Keep/drop ``text``; the failed rule is the first in :attr:`rule_names` order, as in the reference."""
        failed = first_failure(self.rule_names, self.rule_failures(text))
        return FilterDecision(keep=failed is None, failed_rule=failed, text=text)
