"""C4's clean-up rules (Raffel et al. 2020, section 2.2), as datatrove's ``C4QualityFilter``.

Reference: huggingface/datatrove ``src/datatrove/pipeline/filters/c4_filters.py`` (itself following
tensorflow_datasets ``c4_utils.py``); thresholds and rule order are the reference's, the code is ours.

C4 mixes *line* rules, which delete a line and keep the page, with *page* rules, which drop the page. Each
line is stripped and then, in this order:

1. ``too_long_word``      a word (whitespace split) longer than 1000 characters: drop the line
2. citation markers ``[1]``, ``[edit]``, ``[citation needed]`` are removed from the line
3. ``no_terminal_punct``  the line does not end in . ? ! " ' , or ends in "...": drop the line
4. ``too_few_words``      fewer than 3 words: drop the line
5. ``lorem_ipsum``        the line contains "lorem ipsum" (any case): drop the page
6. ``javascript``         the line contains "javascript" (any case): drop the line
7. ``curly_bracket``      the line contains "{": drop the page
8. ``policy``             the line contains a cookie / terms-of-use phrase: drop the line

and finally ``too_few_sentences``: fewer than 5 sentences in the kept lines drops the page.

Like the reference, the page rules 5 and 7 only see lines that survived the line rules before them (a
``{{template}}`` line without final punctuation is deleted, it does not drop the page).

Differences from the reference: sentences are counted with a regex (runs of . ! ? followed by optional
closing quotes/brackets, then whitespace or the end of the line) instead of NLTK's punkt model, so
abbreviations such as "Mr." count as sentence ends; the bad-words list of C4 is not applied (datatrove keeps
it in a separate filter too).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from .base import FilterDecision

CITATION_PATTERN = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
TERMINAL_PUNCTUATION = (".", "?", "!", '"', "'")
POLICY_PHRASES = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)
SENTENCE_END_PATTERN = re.compile(r"[.!?]+['\"”’)\]]*(?=\s|$)")


def count_sentences(line: str) -> int:
    """Count sentences in ``line`` with a regex (punkt-free approximation); a non-empty line has at least 1."""
    if not line.strip():
        return 0
    return max(1, len(SENTENCE_END_PATTERN.findall(line)))


@dataclass
class C4QualityFilter:
    """C4's line and page rules (see the module docstring for order, thresholds and references).

    ``rule_names`` holds the page-level rules, the only ones that drop a document. Line-level rules delete
    lines; :meth:`line_rule_failures` reports how many lines each would delete on its own.
    """

    name = "c4_quality"
    rule_names: ClassVar[tuple[str, ...]] = ("lorem_ipsum", "curly_bracket", "too_few_sentences")
    line_rule_names: ClassVar[tuple[str, ...]] = (
        "too_long_word",
        "no_terminal_punct",
        "too_few_words",
        "javascript",
        "policy",
    )

    # The thresholds; the defaults are the reference's.
    min_num_sentences: int = 5
    min_words_per_line: int = 3
    max_word_length: int = 1000
    remove_citations: bool = True

    def _clean(self, raw_line: str) -> tuple[str, list[str]]:
        """Strip a line, split its words, and remove citation markers (words are counted before removal)."""
        line = raw_line.strip()
        words = line.split()
        if self.remove_citations:
            line = CITATION_PATTERN.sub("", line)
        return line, words

    def _line_checks(self, line: str, words: list[str]) -> dict[str, bool]:
        """Every line rule on one cleaned line; ``True`` means the rule deletes the line."""
        lowered = line.lower()
        return {
            "too_long_word": any(len(word) > self.max_word_length for word in words),
            "no_terminal_punct": not line.endswith(TERMINAL_PUNCTUATION) or line.endswith("..."),
            "too_few_words": len(words) < self.min_words_per_line,
            "javascript": "javascript" in lowered,
            "policy": any(phrase in lowered for phrase in POLICY_PHRASES),
        }

    def _scan(self, text: str, stop_at_page_rule: bool) -> tuple[list[str], dict[str, bool], int]:
        """Walk the lines in reference order.

        Returns the kept lines, which page rules fired (``lorem_ipsum``, ``curly_bracket``) and the sentence
        count of the kept lines. With ``stop_at_page_rule`` the walk ends at the first page rule, as in the
        reference; without it every line is visited so each page rule can be judged on its own.
        """
        kept: list[str] = []
        fired = {"lorem_ipsum": False, "curly_bracket": False}
        sentences = 0
        for raw_line in text.splitlines():
            line, words = self._clean(raw_line)
            checks = self._line_checks(line, words)
            if checks["too_long_word"] or checks["no_terminal_punct"] or checks["too_few_words"]:
                continue
            if "lorem ipsum" in line.lower():
                fired["lorem_ipsum"] = True
                if stop_at_page_rule:
                    break
                continue
            if checks["javascript"]:
                continue
            if "{" in line:
                fired["curly_bracket"] = True
                if stop_at_page_rule:
                    break
                continue
            if checks["policy"]:
                continue
            kept.append(line)
            sentences += count_sentences(line)
        return kept, fired, sentences

    def rule_failures(self, text: str) -> dict[str, bool]:
        """Page rules judged independently, after the line rules (which are the pipeline's preprocessing)."""
        _, fired, sentences = self._scan(text, stop_at_page_rule=False)
        return {**fired, "too_few_sentences": sentences < self.min_num_sentences}

    def line_rule_failures(self, text: str) -> tuple[int, dict[str, int]]:
        """Count the non-empty lines and, per line rule evaluated alone, how many lines it would delete."""
        removed = dict.fromkeys(self.line_rule_names, 0)
        n_lines = 0
        for raw_line in text.splitlines():
            if not raw_line.strip():
                continue
            n_lines += 1
            for rule, fails in self._line_checks(*self._clean(raw_line)).items():
                removed[rule] += fails
        return n_lines, removed

    def filter(self, text: str) -> FilterDecision:
        """Apply the rules sequentially as the reference does; a kept page has its deleted lines removed."""
        kept, fired, sentences = self._scan(text, stop_at_page_rule=True)
        for rule, dropped in fired.items():
            if dropped:
                return FilterDecision(keep=False, failed_rule=rule, text=text)
        if sentences < self.min_num_sentences:
            return FilterDecision(keep=False, failed_rule="too_few_sentences", text=text)
        return FilterDecision(keep=True, failed_rule=None, text="\n".join(kept).strip())
