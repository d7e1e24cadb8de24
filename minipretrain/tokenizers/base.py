"""The one small interface every tokenizer shares, plus saving, loading and errors.

The objectives, datasets and trainer only ever talk to a :class:`Tokenizer`: they need the vocabulary
size, the ids of the special tokens, ``encode``/``decode`` and a ``fingerprint()`` that changes whenever
the tokenizer would produce different ids (so token caches can be invalidated).

Files are readable JSON::

    {"format": "minipretrain-tokenizer", "format_version": 1, "kind": "bpe" | "wordpiece" | "char", ...}

:func:`load_tokenizer` reads the ``kind`` and hands the file to the matching class.
"""
from __future__ import annotations

import hashlib
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, Union

import regex

from ..errors import MinipretrainError
from ..files import atomic_file

PAD_TOKEN = "[PAD]"
CLS_TOKEN = "[CLS]"
SEP_TOKEN = "[SEP]"
MASK_TOKEN = "[MASK]"
EOS_TOKEN = "<|endoftext|>"
#: The reserved tokens, in the order they get ids (after the learned vocabulary, for BPE and char).
SPECIAL_TOKENS: tuple[str, ...] = (PAD_TOKEN, CLS_TOKEN, SEP_TOKEN, MASK_TOKEN, EOS_TOKEN)

FILE_FORMAT = "minipretrain-tokenizer"
FILE_FORMAT_VERSION = 1

#: ``allowed_special`` takes "none" (the default: special-token text is ordinary text), "all", or a
#: collection of special-token strings that may be encoded as their reserved ids.
AllowedSpecial = Union[Literal["all", "none"], Collection[str]]
TextSource = Union[str, Iterable[str]]
TokenizerT = TypeVar("TokenizerT", bound="Tokenizer")


class TokenizerError(MinipretrainError, ValueError):
    """Bad input to a tokenizer: a wrong setting, text it cannot encode, or a file it cannot read."""


class NotTrainedError(TokenizerError):
    """The tokenizer was used before it was trained or loaded."""


class TokenizerFileError(TokenizerError):
    """A tokenizer file is missing, corrupted, or not a minipretrain tokenizer file."""


def special_splitter(tokens: Iterable[str]) -> "regex.Pattern[str]":
    """A pattern whose capturing split keeps the special tokens (longest first, so none hides another)."""
    alternatives = sorted(tokens, key=len, reverse=True)
    return regex.compile("(" + "|".join(regex.escape(token) for token in alternatives) + ")")


def _special_id_property(token: str, doc: str) -> property:
    """A read-only ``tokenizer.<name>_id`` for one special token (a clear error when the tokenizer lacks it)."""
    return property(lambda self: self._special_id(token), doc=doc)


class Tokenizer(ABC):
    """Shared interface of all tokenizers (BPE, WordPiece, char).

    Subclasses set :attr:`kind`, keep a mapping ``special_tokens`` (token string -> id) and implement
    training, ``encode``/``decode`` and their own JSON state (:meth:`_state` / :meth:`_from_state`).
    """

    kind: ClassVar[str] = ""
    #: Every concrete class by its ``kind``, filled in as each subclass is defined (``load_tokenizer`` reads
    #: it, so this module needs no import of its subclasses).
    kinds: ClassVar[dict[str, type[Tokenizer]]] = {}

    def __init_subclass__(cls, **options: Any) -> None:
        super().__init_subclass__(**options)
        if cls.__dict__.get("kind"):  # a class that names its own kind (a subclass of CharTokenizer does not)
            Tokenizer.kinds[cls.kind] = cls

    # ----- vocabulary and special ids -------------------------------------------------------------
    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """Number of ids the model's embedding needs (every id is < vocab_size)."""

    @property
    @abstractmethod
    def is_trained(self) -> bool:
        """True once the tokenizer was trained or loaded and can encode."""

    @property
    @abstractmethod
    def special_tokens(self) -> dict[str, int]:
        """Special-token string -> reserved id."""

    def _special_id(self, token: str) -> int:
        try:
            return self.special_tokens[token]
        except KeyError:
            raise TokenizerError(f"{type(self).__name__} has no special token {token!r}") from None

    pad_id = _special_id_property(PAD_TOKEN, "Id of ``[PAD]`` (padding; never a prediction target).")
    cls_id = _special_id_property(CLS_TOKEN, "Id of ``[CLS]`` (starts an MLM sequence).")
    sep_id = _special_id_property(SEP_TOKEN, "Id of ``[SEP]`` (ends an MLM sequence).")
    mask_id = _special_id_property(MASK_TOKEN, "Id of ``[MASK]`` (replaces masked tokens in MLM).")
    eos_id = _special_id_property(EOS_TOKEN, "Id of the end-of-document token (``<|endoftext|>``; WordPiece uses "
                                             "``[SEP]``).")

    @property
    def special_ids(self) -> frozenset[int]:
        """All reserved ids (MLM never masks or samples them)."""
        return frozenset(self.special_tokens.values())

    # ----- the work ---------------------------------------------------------------------------------
    @abstractmethod
    def train(self, text: TextSource) -> "Tokenizer":
        """Learn the vocabulary from a string or an iterable of strings (documents); returns self."""

    def encode(self, text: str, allowed_special: AllowedSpecial = "none") -> list[int]:
        """Text -> ids. Special-token strings become their ids only when ``allowed_special`` allows.

        Otherwise a string such as "[MASK]" in the text is ordinary text: user data can never inject a
        control token by accident. Allowed ones are cut out first and kept as one id each.
        """
        self._require_trained()
        if not isinstance(text, str):
            raise TokenizerError(f"encode() takes a str, got {type(text).__name__}")
        allowed = self._allowed_special_set(allowed_special)
        ids: list[int] = []
        if not allowed:
            self._encode_ordinary(text, ids)
            return ids
        specials = self.special_tokens
        for position, part in enumerate(special_splitter(allowed).split(text)):
            if position % 2:  # odd items of a capturing split are the separators: the special tokens
                ids.append(specials[part])
            elif part:
                self._encode_ordinary(part, ids)
        return ids

    @abstractmethod
    def _encode_ordinary(self, text: str, out: list[int]) -> None:
        """Append the ids of ``text`` (no special tokens recognised) to ``out``."""

    @abstractmethod
    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> text."""

    def _require_trained(self) -> None:
        if not self.is_trained:
            raise NotTrainedError(
                f"this {type(self).__name__} is not trained yet: call .train(text) or load one with "
                f"load_tokenizer(path) first"
            )

    def _allowed_special_set(self, allowed_special: AllowedSpecial) -> frozenset[str]:
        """Resolve ``allowed_special`` to a set of special-token strings; unknown names are an error."""
        if allowed_special == "all":
            return frozenset(self.special_tokens)
        if allowed_special == "none":
            return frozenset()
        if isinstance(allowed_special, str):
            raise TokenizerError(
                f"allowed_special must be 'all', 'none' or a collection of special tokens, not the string "
                f"{allowed_special!r} (wrap a single token in a set: {{{allowed_special!r}}})"
            )
        requested = frozenset(allowed_special)
        unknown = requested - set(self.special_tokens)
        if unknown:
            raise TokenizerError(
                f"unknown special token(s) {sorted(unknown)}; this tokenizer's special tokens are "
                f"{sorted(self.special_tokens)}"
            )
        return requested

    # ----- persistence ------------------------------------------------------------------------------
    @abstractmethod
    def _state(self) -> dict[str, Any]:
        """Everything that defines the tokenizer's behaviour, as JSON-ready values."""

    @classmethod
    @abstractmethod
    def _from_state(cls: type[TokenizerT], state: dict[str, Any]) -> TokenizerT:
        """Rebuild a tokenizer from :meth:`_state` (raise KeyError/TypeError/ValueError when malformed)."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON document that :meth:`save` writes."""
        self._require_trained()
        return {"format": FILE_FORMAT, "format_version": FILE_FORMAT_VERSION, "kind": self.kind, **self._state()}

    def _fingerprint_payload(self) -> dict[str, Any]:
        """What the fingerprint hashes: the saved document (subclasses drop display-only fields)."""
        return self.to_dict()

    def fingerprint(self) -> str:
        """A stable sha256 (hex) of the tokenizer's content; equal fingerprints mean equal encodings."""
        canonical = json.dumps(self._fingerprint_payload(), sort_keys=True, ensure_ascii=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the tokenizer as readable JSON (atomically: temporary file, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(), indent=1, ensure_ascii=False)
        with atomic_file(path, "w") as file:
            file.write(text + "\n")
        return path

    @classmethod
    def load(cls: type[TokenizerT], path: str | os.PathLike[str]) -> TokenizerT:
        """Read a tokenizer saved by :meth:`save`; the file's kind must match this class."""
        document = read_tokenizer_file(path)
        if document["kind"] != cls.kind:
            raise TokenizerFileError(
                f"{path} holds a {document['kind']!r} tokenizer, not {cls.kind!r}: "
                f"use load_tokenizer(path) to load whatever kind it is"
            )
        return _build(cls, document, path)


def read_tokenizer_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check the envelope of a tokenizer file; the error says what is wrong and what to do."""
    path = Path(path)
    if not path.is_file():
        raise TokenizerFileError(f"no tokenizer file at {path}: train a tokenizer and save() it there first")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise TokenizerFileError(
            f"{path} is not valid JSON ({error}); the file is corrupted: train and save the tokenizer again"
        ) from None
    if not isinstance(document, dict) or document.get("format") != FILE_FORMAT:
        hint = ""
        if isinstance(document, dict) and "model" in document and "added_tokens" in document:
            hint = " It looks like a Hugging Face tokenizer.json, which minipretrain does not read."
        raise TokenizerFileError(
            f"{path} is not a minipretrain tokenizer file (no \"format\": \"{FILE_FORMAT}\").{hint} "
            f"Save a tokenizer with Tokenizer.save(path); a BERT vocab.txt loads with "
            f"WordPieceTokenizer.from_vocab_file(path)."
        )
    version = document.get("format_version")
    if version != FILE_FORMAT_VERSION:
        raise TokenizerFileError(
            f"{path} has format_version {version!r}; this minipretrain reads version {FILE_FORMAT_VERSION}"
        )
    return document


def _build(cls: type[TokenizerT], document: dict[str, Any], path: str | os.PathLike[str]) -> TokenizerT:
    try:
        return cls._from_state(document)
    except (KeyError, TypeError, ValueError, IndexError) as error:
        if isinstance(error, TokenizerError):
            raise TokenizerFileError(f"{path}: {error}") from None
        raise TokenizerFileError(
            f"{path} is a {cls.kind!r} tokenizer file with missing or malformed fields "
            f"({type(error).__name__}: {error}); the file is corrupted: train and save the tokenizer again"
        ) from None


def load_tokenizer(path: str | os.PathLike[str]) -> Tokenizer:
    """Load any tokenizer saved with ``save()``, choosing the class from the file's ``kind``."""
    document = read_tokenizer_file(path)
    classes = Tokenizer.kinds
    kind = document.get("kind")
    if kind not in classes:
        raise TokenizerFileError(f"{path} has unknown tokenizer kind {kind!r}; known kinds: {sorted(classes)}")
    return _build(classes[kind], document, path)


def iter_texts(text: TextSource) -> Iterable[str]:
    """A string is one text; anything else is an iterable of texts (type-checked as they come)."""
    if isinstance(text, str):
        yield text
        return
    for item in text:
        if not isinstance(item, str):
            raise TokenizerError(f"training texts must be str, got {type(item).__name__}")
        yield item
