"""Character-level tokenizer for character-level lessons and nanoGPT-comparable runs.

Ids follow nanoGPT's ``data/shakespeare_char/prepare.py`` exactly: the training text's distinct characters,
sorted, get ids ``0..n-1`` (Tiny Shakespeare: 65 characters -> ids 0..64). The five special tokens come
after them (``n..n+4``), so ``vocab_size = n + 5``.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from minipretrain.tokenizers.base import SPECIAL_TOKENS, TextSource, Tokenizer, TokenizerError, iter_texts


class CharTokenizer(Tokenizer):
    """One id per character; characters sorted as nanoGPT does, special tokens after them."""

    kind = "char"

    def __init__(self) -> None:
        self.characters: list[str] = []
        self._char_to_id: dict[str, int] = {}
        self._special_tokens: dict[str, int] = {}
        self._id_to_token: list[str] = []

    def _set_characters(self, characters: Iterable[str]) -> None:
        self.characters = sorted(set(characters))
        self._char_to_id = {character: index for index, character in enumerate(self.characters)}
        first_special = len(self.characters)
        self._special_tokens = {token: first_special + offset for offset, token in enumerate(SPECIAL_TOKENS)}
        self._id_to_token = self.characters + list(SPECIAL_TOKENS)

    @property
    def vocab_size(self) -> int:
        """Distinct characters + 5 special tokens."""
        self._require_trained()
        return len(self._id_to_token)

    @property
    def is_trained(self) -> bool:
        """True once the character set is known."""
        return bool(self.characters)

    @property
    def special_tokens(self) -> dict[str, int]:
        """Special-token string -> id (right after the characters)."""
        self._require_trained()
        return dict(self._special_tokens)

    def train(self, text: TextSource) -> "CharTokenizer":
        """Collect the set of characters of a string or iterable of documents; returns self."""
        characters: set[str] = set()
        for document in iter_texts(text):
            characters.update(document)
        if not characters:
            raise TokenizerError("cannot train a tokenizer on empty text: give it at least one non-empty string")
        self._set_characters(characters)
        return self

    def _encode_ordinary(self, text: str, out: list[int]) -> None:
        lookup = self._char_to_id
        try:
            out.extend([lookup[character] for character in text])
        except KeyError:
            unknown = sorted(set(text) - set(lookup))
            raise TokenizerError(
                f"character(s) {unknown!r} are not in this CharTokenizer's vocabulary of {len(lookup)} characters; "
                f"train it on text that contains them"
            ) from None

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> text (special ids become their token strings)."""
        self._require_trained()
        table = self._id_to_token
        pieces = []
        for token_id in ids:
            if not 0 <= int(token_id) < len(table):
                raise TokenizerError(f"id {token_id} is outside 0..{len(table) - 1}, this CharTokenizer's vocabulary")
            pieces.append(table[int(token_id)])
        return "".join(pieces)

    def _state(self) -> dict[str, Any]:
        return {"characters": self.characters, "special_tokens": self._special_tokens}

    @classmethod
    def _from_state(cls, state: dict[str, Any]) -> "CharTokenizer":
        characters = list(state["characters"])
        if not characters or any(not isinstance(c, str) or len(c) != 1 for c in characters):
            raise ValueError("'characters' must be a non-empty list of single characters")
        if characters != sorted(set(characters)):
            raise ValueError("'characters' must be sorted and distinct")
        tokenizer = cls()
        tokenizer._set_characters(characters)
        if dict(state["special_tokens"]) != tokenizer._special_tokens:
            raise ValueError("special_tokens do not follow the characters")
        return tokenizer
