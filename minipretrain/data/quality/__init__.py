"""Data-quality tools for the data-quality experiment: heuristic filters, deduplication, noise injection.

* :class:`GopherQualityFilter`, :class:`GopherRepetitionFilter` (Rae et al. 2021),
  :class:`C4QualityFilter` (Raffel et al. 2020), :class:`FineWebQualityFilter` (Penedo et al. 2024), all
  with the thresholds of datatrove's reference implementations, and :func:`removal_report` for per-rule
  removal rates;
* :func:`exact_dedup` and :class:`MinHashDeduplicator` (5-gram shingles, 14 bands x 8 rows);
* :func:`inject_noise` and :func:`match_size` to corrupt a clean corpus at a known rate and compare at equal
  token count.
"""

from .base import FilterDecision, RemovalReport, removal_report, split_words
from .c4 import C4QualityFilter
from .dedup import (
    MinHashDeduplicator,
    candidate_probability,
    exact_dedup,
    jaccard_similarity,
    minhash_dedup,
    normalize_text,
)
from .fineweb import FineWebQualityFilter
from .gopher import GopherQualityFilter, GopherRepetitionFilter
from .noise import NoisedCorpus, corpus_size, inject_noise, match_size, truncate_to_budget

__all__ = [
    "C4QualityFilter",
    "FilterDecision",
    "FineWebQualityFilter",
    "GopherQualityFilter",
    "GopherRepetitionFilter",
    "MinHashDeduplicator",
    "NoisedCorpus",
    "RemovalReport",
    "candidate_probability",
    "corpus_size",
    "exact_dedup",
    "inject_noise",
    "jaccard_similarity",
    "match_size",
    "minhash_dedup",
    "normalize_text",
    "removal_report",
    "split_words",
    "truncate_to_budget",
]
