"""Readers for the corpus formats: WikiText, plain text, and the labelled classification sets.

WikiText (``wiki.{train,valid,test}.{tokens,raw}``): one paragraph per line, articles begin with a line
`` = Title = `` and sections with `` = = Section = = `` (deeper levels add ``= ``). Articles are split at the
title lines; each article's text keeps all its lines (title and headers included), so joining the articles
gives the file back. Lines are read with universal newlines (a CRLF file gives ``\\n``).

Classification sets become :class:`LabeledExample` (text, label) lists:

* sst2 (``sentence<TAB>label`` with a header; labels ``"0"``/``"1"``),
* agnews (``text<TAB>label``, no header; labels World/Sports/Business/Sci/Tech),
* trec (``COARSE:fine question``; label = the coarse class, or ``COARSE:fine`` with ``fine=True``),
* brown genres (``brown_sentences.tsv``: fileid, genre, sentence; with a header).

Encoding: these files are decoded as UTF-8 when they are valid UTF-8 and as latin-1 otherwise. TREC's
training file holds one non-UTF-8 byte (0xF0, from the original release), so it is read as latin-1; SST-2
is valid UTF-8 with accented words, which latin-1 would garble.
"""
from __future__ import annotations

import os
import regex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

PathLike = Union[str, os.PathLike[str]]
_HEADER = regex.compile(r"^((?:= )+)(.*?)((?: =)+)$")


@dataclass(frozen=True)
class WikiArticle:
    """One WikiText article: its title, full text (header lines included) and section titles in order."""

    title: str
    text: str
    sections: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class LabeledExample:
    """A (text, label) pair of a classification set."""

    text: str
    label: str


def parse_wikitext_header(line: str) -> Optional[tuple[int, str]]:
    """``' = Title = '`` -> ``(1, 'Title')``, ``' = = Section = = '`` -> ``(2, 'Section')``; other lines -> None."""
    match = _HEADER.match(line.strip())
    if match is None:
        return None
    level = match.group(1).count("=")
    if level != match.group(3).count("=") or not match.group(2).strip():
        return None
    return level, match.group(2).strip()


def iter_wikitext_articles(path: PathLike) -> Iterator[WikiArticle]:
    """Stream the articles of a WikiText file (lines before the first title form an untitled article)."""
    title: Optional[str] = None
    lines: list[str] = []
    sections: list[str] = []
    with open(path, encoding="utf-8") as file:
        for line in file:
            header = parse_wikitext_header(line)
            if header is not None and header[0] == 1:
                if lines and (title is not None or "".join(lines).strip()):
                    yield WikiArticle(title or "", "".join(lines), tuple(sections))
                title, lines, sections = header[1], [], []
            elif header is not None:
                sections.append(header[1])
            lines.append(line)
    if lines and (title is not None or "".join(lines).strip()):
        yield WikiArticle(title or "", "".join(lines), tuple(sections))


def read_wikitext(path: PathLike) -> list[WikiArticle]:
    """All articles of a WikiText file (see :func:`iter_wikitext_articles`)."""
    return list(iter_wikitext_articles(path))


def read_text(path: PathLike) -> str:
    """A UTF-8 text file as one string (universal newlines)."""
    return Path(path).read_text(encoding="utf-8")


def _read_lines(path: PathLike) -> list[str]:
    """Lines of a file decoded as UTF-8 when valid, otherwise latin-1 (see the module docstring)."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return text.splitlines()


def _split_tab_rows(path: PathLike, columns: int, has_header: bool) -> list[list[str]]:
    rows = []
    lines = _read_lines(path)
    for number, line in enumerate(lines[1:] if has_header else lines, start=2 if has_header else 1):
        if not line.strip():
            continue
        parts = line.rsplit("\t", columns - 1) if columns == 2 else line.split("\t", columns - 1)
        if len(parts) != columns:
            raise ValueError(f"{path}:{number}: expected {columns} tab-separated columns, got {len(parts)}")
        rows.append(parts)
    return rows


def read_sst2(path: PathLike) -> list[LabeledExample]:
    """SST-2 ``sentence<TAB>label`` (with header); sentences keep their PTB tokenisation, trailing space trimmed."""
    return [LabeledExample(text.strip(), label.strip()) for text, label in _split_tab_rows(path, 2, has_header=True)]


def read_agnews(path: PathLike) -> list[LabeledExample]:
    """AG News ``title+description<TAB>label`` (no header)."""
    return [LabeledExample(text.strip(), label.strip()) for text, label in _split_tab_rows(path, 2, has_header=False)]


def read_trec(path: PathLike, fine: bool = False) -> list[LabeledExample]:
    """TREC ``COARSE:fine question``; the label is the coarse class (or ``COARSE:fine`` when ``fine``)."""
    examples = []
    for number, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        label, _, question = line.partition(" ")
        if ":" not in label:
            raise ValueError(f"{path}:{number}: expected 'COARSE:fine question', got {line[:40]!r}")
        examples.append(LabeledExample(question.strip(), label if fine else label.split(":", 1)[0]))
    return examples


def read_brown_genres(path: PathLike) -> list[LabeledExample]:
    """Brown ``fileid<TAB>genre<TAB>sentence`` (with header) -> (sentence, genre)."""
    return [LabeledExample(sentence.strip(), genre) for _, genre, sentence in _split_tab_rows(path, 3, has_header=True)]


CLASSIFICATION_READERS = {"sst2": read_sst2, "agnews": read_agnews, "trec": read_trec, "brown": read_brown_genres}
_BROWN_SPLIT_FILE = "brown_sentences.tsv"


def read_classification(name: str, split: str = "train", root: Optional[PathLike] = None) -> list[LabeledExample]:
    """A registry classification set (sst2, agnews, trec, or brown genres) as (text, label) pairs.

    The files are fetched into the cache first (mirror or download). Brown has one file for all
    sentences; ``split`` must then be "train" (make your own split).
    """
    from minipretrain.data.download import download  # noqa: PLC0415 - keep readers importable alone
    from minipretrain.data.registry import get_corpus  # noqa: PLC0415

    if name not in CLASSIFICATION_READERS:
        raise KeyError(f"{name!r} is not a classification set; choose one of {sorted(CLASSIFICATION_READERS)}")
    corpus = get_corpus(name)
    if name == "brown":
        if split != "train":
            raise KeyError("brown genres come as one file: use split='train' and split it yourself")
        file_name = _BROWN_SPLIT_FILE
    elif split in corpus.splits:
        file_name = corpus.splits[split]
    else:
        raise KeyError(f"{name} has no {split!r} split; it has {sorted(corpus.splits)}")
    folder = download(corpus, files=[file_name], root=Path(root) if root is not None else None, progress=False)
    return CLASSIFICATION_READERS[name](folder / file_name)
