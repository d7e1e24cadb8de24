"""Shared pieces of the heuristic quality filters: word splitting, decisions, removal reports.

Every filter in this package follows one contract so that an experiment can treat them alike:

* ``rule_names`` lists the rules in the order the reference implementation checks them;
* ``rule_failures(text)`` evaluates every rule *independently* and says which ones the document fails;
* ``filter(text)`` returns a :class:`FilterDecision`: keep/drop plus the first rule (in reference order)
  that dropped the document, which is what the reference implementations report;
* :func:`removal_report` aggregates both views over a list of documents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Protocol, Sequence

# The reference implementations (datatrove) split words with NLTK's Treebank tokenizer. We use a regex that
# is close enough for English heuristics and needs no model download: a word is a run of letters/digits,
# optionally joined by apostrophes or hyphens ("don't", "well-known", one token each; NLTK gives "do", "n't"
# for the first), a number may carry inner dots or commas ("3.14"), and every run of other non-space
# characters ("...", "#", "--", "<") is one symbol token (NLTK splits most punctuation per character).
WORD_PATTERN = re.compile(r"\d+(?:[.,]\d+)+|\w+(?:['’\-]\w+)*|[^\w\s]+")


def split_words(text: str) -> list[str]:
    """Split ``text`` into word and symbol tokens with :data:`WORD_PATTERN` (an NLTK-free approximation)."""
    return WORD_PATTERN.findall(text)


def duplicate_counts(items: Sequence[str]) -> tuple[int, int]:
    """Count the repeated elements of ``items`` and their characters.

    The first occurrence of an element is not a duplicate; each further occurrence adds one element and its
    length in characters. This is the counting of Gopher's Table A1 (as datatrove's ``find_duplicates``).
    """
    seen: set[str] = set()
    duplicate_elements = 0
    duplicate_chars = 0
    for item in items:
        if item in seen:
            duplicate_elements += 1
            duplicate_chars += len(item)
        else:
            seen.add(item)
    return duplicate_elements, duplicate_chars


@dataclass(frozen=True)
class FilterDecision:
    """Outcome of one filter on one document.

    Attributes:
        keep: whether the document survives the filter.
        failed_rule: name of the first rule (in the reference's order) that dropped it, ``None`` when kept.
        text: the text that continues down the pipeline; line-level filters (C4) rewrite it, others return
            the input unchanged.
    """

    keep: bool
    failed_rule: str | None
    text: str


class QualityFilter(Protocol):
    """What :func:`removal_report` needs from a filter."""

    name: str
    rule_names: tuple[str, ...]

    def rule_failures(self, text: str) -> dict[str, bool]:
        """Evaluate every rule on its own; ``True`` means the document fails that rule."""
        ...

    def filter(self, text: str) -> FilterDecision:
        """Keep/drop the document and name the first failing rule."""
        ...


def first_failure(rule_names: Sequence[str], failures: Mapping[str, bool]) -> str | None:
    """Return the first rule of ``rule_names`` that ``failures`` marks as failed, or ``None``."""
    for rule in rule_names:
        if failures[rule]:
            return rule
    return None


@dataclass
class RemovalReport:
    """Per-rule removal rates of one filter over a corpus.

    Attributes:
        filter_name: the filter's name.
        n_documents: how many documents were evaluated.
        kept_fraction: fraction that the whole filter keeps.
        first_failure_rate: per rule, fraction of *all* documents that this rule dropped first (the rates sum
            to ``1 - kept_fraction``).
        own_rate: per rule, fraction of all documents that fail this rule evaluated on its own.
        line_removal_rate: per line-level rule (C4 only), fraction of non-empty lines it removes on its own.
    """

    filter_name: str
    n_documents: int
    kept_fraction: float
    first_failure_rate: dict[str, float]
    own_rate: dict[str, float]
    line_removal_rate: dict[str, float] = field(default_factory=dict)


def removal_report(quality_filter: QualityFilter, documents: Iterable[str]) -> RemovalReport:
    """Run ``quality_filter`` over ``documents`` and return per-rule removal rates (see :class:`RemovalReport`).

    Raises:
        ValueError: if ``documents`` is empty (rates would be undefined).
    """
    rule_names = quality_filter.rule_names
    first_counts = dict.fromkeys(rule_names, 0)
    own_counts = dict.fromkeys(rule_names, 0)
    line_removed: dict[str, int] = {}
    lines_total = 0
    kept = 0
    n_documents = 0
    line_rates = getattr(quality_filter, "line_rule_failures", None)
    for text in documents:
        n_documents += 1
        failures = quality_filter.rule_failures(text)
        for rule in rule_names:
            own_counts[rule] += failures[rule]
        # ``filter`` is the reference's sequential semantics; for most filters it equals ``first_failure`` of
        # the independent view, but C4's interleaves line- and page-level checks, so ask the filter itself.
        decision = quality_filter.filter(text)
        if decision.keep:
            kept += 1
        else:
            first_counts[decision.failed_rule] += 1  # type: ignore[index]
        if line_rates is not None:
            n_lines, removed = line_rates(text)
            lines_total += n_lines
            for rule, count in removed.items():
                line_removed[rule] = line_removed.get(rule, 0) + count
    if n_documents == 0:
        raise ValueError("removal_report needs at least one document")
    return RemovalReport(
        filter_name=quality_filter.name,
        n_documents=n_documents,
        kept_fraction=kept / n_documents,
        first_failure_rate={rule: count / n_documents for rule, count in first_counts.items()},
        own_rate={rule: count / n_documents for rule, count in own_counts.items()},
        line_removal_rate={rule: count / max(lines_total, 1) for rule, count in line_removed.items()},
    )
