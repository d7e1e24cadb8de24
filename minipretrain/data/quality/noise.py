"""Controlled noise for data-quality experiments: corrupt a clean corpus at a known rate, reproducibly.

The unit of ``rate`` is the same for every kind: the fraction of the clean documents that get corrupted
(``round(rate * n_documents)`` documents, chosen at random without replacement). How hard a chosen document
is corrupted is a separate, explicit *intensity* parameter of each kind:

``boilerplate``   insert ``boilerplate_lines`` web chrome lines (cookie banners, navigation, footers),
                  mostly at the top and bottom of the document, where real pages have them
``duplicates``    insert an extra copy of the document at a random position of the corpus
``random_chars``  replace a fraction ``char_rate`` of its non-whitespace characters by random printable
                  characters (whitespace is kept, so the whitespace-token count does not change)
``markup``        wrap a fraction ``markup_rate`` of its words in HTML tags or MediaWiki markup
``mix``           every chosen document gets one of the four kinds above, drawn uniformly

Noise adds text, so a fair comparison trains on the *same amount* of text: :func:`truncate_to_budget` and
:func:`match_size` cut a noised corpus to the clean corpus's character or whitespace-token count.
Every random choice comes from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np

NoiseKind = Literal["boilerplate", "duplicates", "random_chars", "markup", "mix"]
SizeUnit = Literal["chars", "words"]
NOISE_KINDS: tuple[str, ...] = ("boilerplate", "duplicates", "random_chars", "markup")

BOILERPLATE_LINES: tuple[str, ...] = (
    "We use cookies to improve your experience. By continuing to browse, you accept our cookie policy.",
    "Accept all cookies | Manage preferences",
    "Home | About | Blog | Contact | Login",
    "Skip to main content",
    "Menu  Search  Sign in  Subscribe",
    "Share on Facebook  Share on Twitter  Share by email",
    "Copyright © 2024 All rights reserved.",
    "Privacy Policy | Terms of Use | Sitemap",
    "Subscribe to our newsletter for the latest updates!",
    "Click here to read more",
    "Related posts:",
    "Posted by admin in Uncategorized | Leave a comment",
    "Previous article  Next article",
    "This site requires JavaScript to be enabled.",
    "Follow us on Instagram",
)
HTML_TAGS: tuple[str, ...] = ("b", "i", "span", "div", "p", "em", "strong", "td", "li")
# Printable non-whitespace ASCII: the alphabet random-character noise draws from.
NOISE_ALPHABET = np.array([ord(ch) for ch in string.ascii_letters + string.digits + string.punctuation], dtype=np.uint32)
_WORD_SPAN = re.compile(r"\S+")


@dataclass
class NoisedCorpus:
    """A corrupted corpus and the record of what was done to it.

    Attributes:
        documents: the noised documents, in corpus order.
        kinds: per output document, the noise kind applied (``"clean"`` for untouched ones; an inserted
            copy is ``"duplicates"``, its original stays ``"clean"``).
        source_index: per output document, the index of the clean document it comes from.
    """

    documents: list[str]
    kinds: list[str] = field(default_factory=list)
    source_index: list[int] = field(default_factory=list)

    def noised_fraction(self) -> float:
        """Fraction of the output documents that carry noise."""
        return sum(kind != "clean" for kind in self.kinds) / max(len(self.kinds), 1)


def add_boilerplate(text: str, rng: np.random.Generator, n_lines: int = 4) -> str:
    """Insert ``n_lines`` boilerplate lines: each goes to the top (40%), bottom (40%) or a random line gap."""
    lines = text.split("\n")
    chosen = rng.integers(0, len(BOILERPLATE_LINES), size=n_lines)
    places = rng.random(n_lines)
    for line_index, place in zip(chosen, places):
        if place < 0.4:
            position = 0
        elif place < 0.8:
            position = len(lines)
        else:
            position = int(rng.integers(0, len(lines) + 1))
        lines.insert(position, BOILERPLATE_LINES[line_index])
    return "\n".join(lines)


def add_random_characters(text: str, rng: np.random.Generator, char_rate: float = 0.1) -> str:
    """Replace each non-whitespace character with probability ``char_rate`` by a random printable one."""
    if not 0.0 <= char_rate <= 1.0:
        raise ValueError(f"char_rate must be in [0, 1], got {char_rate}")
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).copy()
    replaceable = ~np.isin(codes, np.array([ord(ch) for ch in string.whitespace], dtype=np.uint32))
    replace = replaceable & (rng.random(codes.shape) < char_rate)
    codes[replace] = rng.choice(NOISE_ALPHABET, size=int(replace.sum()))
    return codes.tobytes().decode("utf-32-le")


def _wrap_in_markup(word: str, style: int) -> str:
    """Wrap one word in one of six markup styles (HTML tags, links, wiki links/bold/templates/refs)."""
    if style == 0:
        tag = HTML_TAGS[len(word) % len(HTML_TAGS)]
        return f"<{tag}>{word}</{tag}>"
    if style == 1:
        return f'<a href="/wiki/{word}" class="link">{word}</a>'
    if style == 2:
        return f"[[{word}]]"
    if style == 3:
        return f"'''{word}'''"
    if style == 4:
        return f"{word}{{{{citation needed|date=May 2021}}}}"
    return f"{word}<ref>{{{{cite web|url=http://example.com/{word}}}}}</ref>"


def add_markup(text: str, rng: np.random.Generator, markup_rate: float = 0.2) -> str:
    """Wrap each whitespace-delimited word with probability ``markup_rate`` in HTML or wiki markup."""
    if not 0.0 <= markup_rate <= 1.0:
        raise ValueError(f"markup_rate must be in [0, 1], got {markup_rate}")
    spans = [match.span() for match in _WORD_SPAN.finditer(text)]
    chosen = rng.random(len(spans)) < markup_rate
    styles = rng.integers(0, 6, size=len(spans))
    pieces: list[str] = []
    cursor = 0
    for (start, end), wrap, style in zip(spans, chosen, styles):
        pieces.append(text[cursor:start])
        word = text[start:end]
        pieces.append(_wrap_in_markup(word, int(style)) if wrap else word)
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)


def inject_noise(
    documents: Sequence[str],
    kind: NoiseKind,
    rate: float,
    seed: int,
    boilerplate_lines: int = 4,
    char_rate: float = 0.1,
    markup_rate: float = 0.2,
) -> NoisedCorpus:
    """Corrupt ``round(rate * len(documents))`` randomly chosen documents with noise of ``kind``.

    Args:
        documents: the clean corpus.
        kind: one of ``boilerplate``, ``duplicates``, ``random_chars``, ``markup`` or ``mix``.
        rate: fraction of the clean documents to corrupt, in [0, 1].
        seed: seeds every random choice; equal arguments give equal output.
        boilerplate_lines, char_rate, markup_rate: intensity of the document-level kinds.

    Returns:
        a :class:`NoisedCorpus`; with ``duplicates`` it is longer than the input (copies are inserted).

    Raises:
        ValueError: for an unknown kind or a rate outside [0, 1].
    """
    if kind not in (*NOISE_KINDS, "mix"):
        raise ValueError(f"unknown noise kind {kind!r}; expected one of {(*NOISE_KINDS, 'mix')}")
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    rng = np.random.default_rng(seed)
    n_docs = len(documents)
    n_noised = int(round(rate * n_docs))
    chosen = rng.choice(n_docs, size=n_noised, replace=False) if n_noised else np.empty(0, dtype=np.int64)
    if kind == "mix":
        kinds_of_chosen = [NOISE_KINDS[k] for k in rng.integers(0, len(NOISE_KINDS), size=n_noised)]
    else:
        kinds_of_chosen = [kind] * n_noised
    kind_by_doc = dict(zip(chosen.tolist(), kinds_of_chosen))

    texts: list[str] = []
    kinds: list[str] = []
    sources: list[int] = []
    copies: list[int] = []
    for index, text in enumerate(documents):
        doc_kind = kind_by_doc.get(index, "clean")
        if doc_kind == "boilerplate":
            text = add_boilerplate(text, rng, boilerplate_lines)
        elif doc_kind == "random_chars":
            text = add_random_characters(text, rng, char_rate)
        elif doc_kind == "markup":
            text = add_markup(text, rng, markup_rate)
        elif doc_kind == "duplicates":
            copies.append(index)
            doc_kind = "clean"  # the original is clean; its inserted copy carries the label
        texts.append(text)
        kinds.append(doc_kind)
        sources.append(index)
    # Insert the copies at random positions (one by one, so positions refer to the growing corpus).
    for source in copies:
        position = int(rng.integers(0, len(texts) + 1))
        texts.insert(position, documents[source])
        kinds.insert(position, "duplicates")
        sources.insert(position, source)
    return NoisedCorpus(documents=texts, kinds=kinds, source_index=sources)


def corpus_size(documents: Sequence[str], unit: SizeUnit = "words") -> int:
    """Total size of a corpus in characters or whitespace-delimited tokens."""
    if unit == "chars":
        return sum(len(text) for text in documents)
    if unit == "words":
        return sum(len(text.split()) for text in documents)
    raise ValueError(f"unit must be 'chars' or 'words', got {unit!r}")


def truncate_to_budget(documents: Sequence[str], budget: int, unit: SizeUnit = "words") -> list[str]:
    """Keep documents in order until ``budget`` characters/words are reached, cutting the last one.

    A cut document keeps its original spacing up to the end of its last whole token (``words``) or
    character (``chars``). Raises ``ValueError`` when the corpus is smaller than the budget.
    """
    if budget < 0:
        raise ValueError("budget must be non-negative")
    available = corpus_size(documents, unit)
    if available < budget:
        raise ValueError(f"corpus has {available} {unit}, fewer than the budget of {budget}")
    kept: list[str] = []
    remaining = budget
    for text in documents:
        if remaining == 0:
            break
        size = corpus_size([text], unit)
        if size <= remaining:
            kept.append(text)
            remaining -= size
            continue
        if unit == "chars":
            kept.append(text[:remaining])
        else:
            last_token = list(_WORD_SPAN.finditer(text))[remaining - 1]
            kept.append(text[: last_token.end()])
        remaining = 0
    return kept


def match_size(clean: Sequence[str], noised: Sequence[str], unit: SizeUnit = "words") -> list[str]:
    """Cut ``noised`` to exactly the size of ``clean`` in ``unit`` ("at equal token count")."""
    return truncate_to_budget(noised, corpus_size(clean, unit), unit)
