"""Per-rule removal rates of the quality filters on the real corpora of the offline mirror (not a test).

Usage:  MINIPRETRAIN_DATA_MIRROR=/work/shared/data python benchmarks/filters_report.py [--max-docs N]

Sources and how they are cut into documents:

* ``spam`` / ``ham``: spamassassin/{spam,ham}_bodies.txt. The files are e-mail bodies joined by a blank line,
  but bodies contain blank lines too, so message boundaries cannot be recovered; a "document" here is one
  blank-line-separated block (a paragraph-sized chunk of an e-mail).
* ``wiki-markup``: wikipedia-markup/enwiki-sample-wikitext-markup.txt, split at the ``= Title =`` lines
  (106 articles of raw MediaWiki markup).
* ``common-crawl``: common-crawl-sample: the 20 documents of the two JSONL files, exactly, plus the 10 other
  documents of cc_docs.txt (its blank-line-separated blocks once the 20 known texts are removed) = 30.

Rates: "first" = fraction of documents the rule dropped first (the reference's sequential order; they sum to
the filter's removal rate), "own" = fraction failing the rule evaluated on its own. For C4's line rules the
rate is the fraction of non-empty lines the rule deletes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

from minipretrain.data.quality import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
    MinHashDeduplicator,
    exact_dedup,
    removal_report,
)


def blank_line_blocks(text: str) -> list[str]:
    """Blocks separated by one or more blank lines, stripped, empty ones dropped."""
    return [block.strip() for block in re.split(r"\n\s*\n", text) if block.strip()]


def load_sources(mirror: Path) -> dict[str, list[str]]:
    """Read every source as a list of documents (see the module docstring for the splitting)."""
    def read(path: Path) -> str:
        return path.read_text(encoding="utf-8", errors="replace")

    sources = {
        "spam": blank_line_blocks(read(mirror / "spamassassin" / "spam_bodies.txt")),
        "ham": blank_line_blocks(read(mirror / "spamassassin" / "ham_bodies.txt")),
    }
    wiki = read(mirror / "wikipedia-markup" / "enwiki-sample-wikitext-markup.txt")
    sources["wiki-markup"] = [a.strip() for a in re.split(r"^= [^\n]* =$", wiki, flags=re.M) if a.strip()]
    cc_dir = mirror / "common-crawl-sample"
    known = [json.loads(line)["text"] for f in sorted(cc_dir.glob("*.jsonl")) for line in read(f).splitlines() if line]
    rest = read(cc_dir / "cc_docs.txt")
    for text in known:
        rest = rest.replace(text.strip(), "\n\n")
    sources["common-crawl"] = known + blank_line_blocks(rest)
    return sources


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-docs", type=int, default=0, help="evaluate at most this many documents per source")
    args = parser.parse_args()
    mirror = Path(os.environ.get("MINIPRETRAIN_DATA_MIRROR") or "/work/shared/data")
    if not mirror.is_dir():
        sys.exit(f"mirror not found: {mirror} (set MINIPRETRAIN_DATA_MIRROR)")
    sources = load_sources(mirror)
    if args.max_docs:
        sources = {name: docs[: args.max_docs] for name, docs in sources.items()}
    names = list(sources)
    filters = [GopherQualityFilter(), GopherRepetitionFilter(), C4QualityFilter(), FineWebQualityFilter()]
    started = time.perf_counter()
    reports = {name: [removal_report(f, docs) for f in filters] for name, docs in sources.items()}

    print(f"mirror: {mirror}")
    print("documents: " + ", ".join(f"{name}={len(docs)}" for name, docs in sources.items()))
    header = f"| {'filter / rule':<38} | " + " | ".join(f"{name:^19}" for name in names) + " |"
    print(header)
    print("|" + "-" * 40 + "|" + "|".join(["-" * 21] * len(names)) + "|")
    cell = lambda first, own: f"{100 * first:6.1f} / {100 * own:6.1f}   "  # noqa: E731
    for index, quality_filter in enumerate(filters):
        removed = [1 - reports[name][index].kept_fraction for name in names]
        print(f"| {'**' + quality_filter.name + ' (removed)**':<38} | "
              + " | ".join(f"{100 * r:6.1f}%{'':12}" for r in removed) + " |")
        for rule in quality_filter.rule_names:
            values = [cell(reports[n][index].first_failure_rate[rule], reports[n][index].own_rate[rule]) for n in names]
            print(f"| {'  ' + rule:<38} | " + " | ".join(values) + " |")
        for rule in getattr(quality_filter, "line_rule_names", ()):
            values = [f"{100 * reports[n][index].line_removal_rate[rule]:6.1f}% of lines{'':3}" for n in names]
            print(f"| {'  line: ' + rule:<38} | " + " | ".join(values) + " |")
    dedup = MinHashDeduplicator(seed=0)
    exact = [1 - len(exact_dedup(sources[n])) / len(sources[n]) for n in names]
    near = [1 - len(dedup.keep_indices(sources[n])) / len(sources[n]) for n in names]
    print(f"| {'**exact dedup (removed)**':<38} | " + " | ".join(f"{100 * r:6.1f}%{'':12}" for r in exact) + " |")
    print(f"| {'**MinHash 14x8 dedup (removed)**':<38} | " + " | ".join(f"{100 * r:6.1f}%{'':12}" for r in near) + " |")
    print("cells: first-failure % / own % of documents; line rules: % of non-empty lines")
    print(f"wall time: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
