"""``docs/results/claims.json``: every claim we test, its rule stated before the run, what we measured, a verdict.

The file is a JSON list of records, one per claim::

    {
      "id": "scaling-exponent",                    # unique, lowercase words joined by hyphens
      "question": "Q4 scaling",                    # which research question it answers
      "claim": "L(N) = E + A / N^alpha with alpha ~ 0.34",
      "source": "Chinchilla (Hoffmann et al. 2022)",   # the original description, a paper, or "ours"
      "rule": "reproduced if the 95% bootstrap interval of alpha contains 0.34 and is narrower than 0.2",
      "measured": "alpha = ... [..., ...], 8 sizes over 2.5 decades",   # numbers, with their intervals
      "verdict": "reproduced",                     # or "not reproduced" or "undetermined"
      "page": "scaling/README.md",                 # the page with the evidence, relative to docs/results/
      "power": "..."                               # required when undetermined: what budget would resolve it
    }

``power`` is the only optional field (allowed with any verdict, required with "undetermined"); any other
key is refused so a typo cannot hide a field. :func:`load_claims` validates a file and reports every problem
at once; :func:`render_table` turns the records into the Markdown table that ``docs/results/README.md``
carries between ``<!-- claims:start -->`` and ``<!-- claims:end -->`` (:func:`update_readme` rewrites it;
``python -m minipretrain.experiments.claims --check`` fails when the README is out of date). An experiment
puts its own records in with :func:`replace_question`, leaving the other questions' alone.
"""
from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass, fields
from pathlib import Path, PurePosixPath
from typing import Any, Optional, Sequence

from ..errors import MinipretrainError

VERDICTS = ("reproduced", "not reproduced", "undetermined")
REQUIRED_FIELDS = ("id", "question", "claim", "source", "rule", "measured", "verdict", "page")
START_MARKER, END_MARKER = "<!-- claims:start -->", "<!-- claims:end -->"
_ID_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
DEFAULT_CLAIMS = Path("docs/results/claims.json")
DEFAULT_README = Path("docs/results/README.md")


class ClaimsError(MinipretrainError, ValueError):
    """claims.json does not follow the schema (the message lists every problem)."""


@dataclass(frozen=True)
class Claim:
    """One record of claims.json (fields as in the module docstring)."""

    id: str
    question: str
    claim: str
    source: str
    rule: str
    measured: str
    verdict: str
    page: str
    power: Optional[str] = None


def _problems_of(record: Any, results_root: Optional[Path]) -> list[str]:
    """Everything wrong with one record (empty when it is valid)."""
    if not isinstance(record, dict):
        return [f"must be a JSON object, got {type(record).__name__}"]
    problems = [f"missing field {name!r}" for name in REQUIRED_FIELDS if name not in record]
    known = {f.name for f in fields(Claim)}
    problems += [f"unknown field {name!r} (known: {', '.join(sorted(known))})" for name in record if name not in known]
    for name, value in record.items():
        if name in known and not (isinstance(value, str) and value.strip()):
            problems.append(f"{name!r} must be a non-empty string, got {value!r}")
    if problems:
        return problems
    if not _ID_PATTERN.fullmatch(record["id"]):
        problems.append(f"id {record['id']!r} must be lowercase letters and digits joined by hyphens")
    if record["verdict"] not in VERDICTS:
        problems.append(f"verdict {record['verdict']!r} must be one of {VERDICTS}")
    if record["verdict"] == "undetermined" and "power" not in record:
        problems.append("an 'undetermined' verdict needs 'power': what budget (seeds, steps, sizes) would resolve it")
    if not re.search(r"\d", record["measured"]):
        problems.append(f"'measured' must give the numbers measured, got {record['measured']!r}")
    page = PurePosixPath(record["page"])
    if page.is_absolute() or ".." in page.parts or page.suffix != ".md":
        problems.append(f"page {record['page']!r} must be a .md path relative to docs/results/, without '..'")
    elif results_root is not None and not (results_root / page).is_file():
        problems.append(f"page {record['page']!r} does not exist under {results_root}")
    return problems


def validate_claims(records: Any, results_root: Optional[Path] = None) -> list[Claim]:
    """The records as :class:`Claim` objects, or a :class:`ClaimsError` listing every problem.

    With ``results_root`` (docs/results/), each record's page must exist there.
    """
    if not isinstance(records, list):
        raise ClaimsError(f"claims.json must hold a JSON list of claim records, got {type(records).__name__}")
    problems, seen = [], set()
    for index, record in enumerate(records):
        label = f"record {index}" + (f" ({record['id']!r})" if isinstance(record, dict) and "id" in record else "")
        problems += [f"{label}: {problem}" for problem in _problems_of(record, results_root)]
        if isinstance(record, dict) and isinstance(record.get("id"), str):
            if record["id"] in seen:
                problems.append(f"{label}: id {record['id']!r} is used twice")
            seen.add(record["id"])
    if problems:
        raise ClaimsError("claims do not follow the schema:\n  " + "\n  ".join(problems))
    return [Claim(**record) for record in records]


def load_claims(path: Path | str = DEFAULT_CLAIMS, check_pages: bool = True) -> list[Claim]:
    """Read and validate claims.json; ``check_pages`` also requires each page to exist beside the file."""
    path = Path(path)
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ClaimsError(f"{path} does not exist; create it as a JSON list of claim records") from None
    except json.JSONDecodeError as error:
        raise ClaimsError(f"{path} is not valid JSON: {error}") from None
    return validate_claims(records, path.parent if check_pages else None)


def replace_question(path: Path | str, question: str, records: Sequence[dict[str, Any]]) -> list[Claim]:
    """Write ``records`` into claims.json at ``path`` in place of every record of ``question``; the other
    questions' records stay, in their order (each experiment rewrites only its own). The whole file is
    validated (pages checked beside it) before it is written, atomically; a missing file starts empty."""
    from ..files import atomic_file

    path = Path(path)
    wrong = [record.get("id") for record in records if record.get("question") != question]
    if wrong:
        raise ClaimsError(f"records {wrong} do not belong to question {question!r}")
    existing = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
    if not isinstance(existing, list):
        raise ClaimsError(f"{path} must hold a JSON list of claim records")
    combined = [r for r in existing if not (isinstance(r, dict) and r.get("question") == question)] + list(records)
    claims = validate_claims(combined, path.parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, "w") as handle:
        handle.write(json.dumps(combined, indent=1, ensure_ascii=False) + "\n")
    return claims


def _cell(text: str) -> str:
    """Text safe inside one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def render_table(claims: Sequence[Claim]) -> str:
    """The claims as a Markdown table (an undetermined verdict carries its power estimate)."""
    lines = ["| id | question | claim | source | rule | measured | verdict | page |",
             "|---|---|---|---|---|---|---|---|"]
    for claim in claims:
        verdict = f"**{claim.verdict}**"
        if claim.verdict == "undetermined":
            verdict += f" (would resolve with: {claim.power})"
        cells = [claim.id, claim.question, claim.claim, claim.source, claim.rule, claim.measured, verdict,
                 f"[{claim.page}]({claim.page})"]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(lines)


def with_table(readme: str, claims: Sequence[Claim]) -> str:
    """``readme`` with the table between the claims markers replaced by :func:`render_table`'s."""
    start, end = readme.find(START_MARKER), readme.find(END_MARKER)
    if start < 0 or end < start:
        raise ClaimsError(f"the README needs the lines {START_MARKER} and {END_MARKER} (in that order) "
                          f"where the claims table goes")
    return readme[:start + len(START_MARKER)] + "\n" + render_table(claims) + "\n" + readme[end:]


def update_readme(readme_path: Path | str, claims: Sequence[Claim]) -> bool:
    """Rewrite the README's claims table; True when it changed."""
    path = Path(readme_path)
    before = path.read_text(encoding="utf-8")
    after = with_table(before, claims)
    if after != before:
        path.write_text(after, encoding="utf-8")
    return after != before


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Validate claims.json and render its table into the results README (``--check``: only compare)."""
    parser = argparse.ArgumentParser(description="validate docs/results/claims.json and render its table")
    parser.add_argument("--claims", default=str(DEFAULT_CLAIMS))
    parser.add_argument("--readme", default=str(DEFAULT_README))
    parser.add_argument("--check", action="store_true", help="fail if the README's table is out of date")
    arguments = parser.parse_args(argv)
    claims = load_claims(arguments.claims)
    readme = Path(arguments.readme).read_text(encoding="utf-8")
    if arguments.check:
        if with_table(readme, claims) != readme:
            print(f"{arguments.readme}: the claims table is out of date; run without --check to rewrite it")
            return 1
        print(f"{len(claims)} claims valid; {arguments.readme} is up to date")
        return 0
    changed = update_readme(arguments.readme, claims)
    print(f"{len(claims)} claims valid; {arguments.readme} {'rewritten' if changed else 'already up to date'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
