"""BERT-style WordPiece: basic pre-tokenisation + greedy longest-match-first sub-words with ``##``.

Encoding follows BERT's own tokenizer (Hugging Face ``BertTokenizer``: ``BasicTokenizer`` then
``WordpieceTokenizer``), so a standard BERT ``vocab.txt`` gives the same ids:

1. clean: drop NUL, U+FFFD and control characters; every whitespace character becomes a space;
2. put spaces around CJK ideographs; Unicode NFC; split on whitespace;
3. lower-case and strip accents (NFD, drop combining marks) when ``lowercase`` (BERT uncased);
4. split off every punctuation character (ASCII symbols count as punctuation, as in BERT);
5. each word: longest vocabulary prefix, then longest ``##`` continuation, ...; a word with an
   unmatchable rest, or longer than ``max_input_chars_per_word``, becomes ``[UNK]``.

Training from a corpus learns the sub-word inventory with BPE merges over the basic tokens (what
Hugging Face ``tokenizers``' WordPieceTrainer does too); encoding is always the greedy match above.

WordPiece has no ``<|endoftext|>``: documents are separated by ``[SEP]`` (``eos_id == sep_id``), and
decoding is lossy by design (lower-cased, spaces around punctuation).
"""
from __future__ import annotations

import os
import unicodedata
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from minipretrain.tokenizers.base import (
    CLS_TOKEN,
    MASK_TOKEN,
    PAD_TOKEN,
    SEP_TOKEN,
    TextSource,
    Tokenizer,
    TokenizerError,
    TokenizerFileError,
    iter_texts,
)
from minipretrain.tokenizers.merges import learn_merges

UNK_TOKEN = "[UNK]"
#: WordPiece's reserved tokens; trained vocabularies put them first, in this order (ids 0..4).
WORDPIECE_SPECIAL_TOKENS: tuple[str, ...] = (PAD_TOKEN, UNK_TOKEN, CLS_TOKEN, SEP_TOKEN, MASK_TOKEN)
CONTINUATION_PREFIX = "##"


# ----- BERT's basic tokenizer, character classes as BERT defines them ---------------------------------
def is_whitespace(character: str) -> bool:
    """Space, tab, newline, carriage return, or any Unicode space separator (Zs)."""
    return character in " \t\n\r" or unicodedata.category(character) == "Zs"


def is_control(character: str) -> bool:
    """Unicode categories C* except tab/newline/carriage return (which BERT treats as whitespace)."""
    return character not in "\t\n\r" and unicodedata.category(character).startswith("C")


def is_punctuation(character: str) -> bool:
    """Unicode P* plus all non-letter/number ASCII symbols such as ``$``, ``^`` and backquote (as BERT)."""
    code = ord(character)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(character).startswith("P")


def is_cjk(code: int) -> bool:
    """CJK Unified Ideographs blocks (not Hangul or kana, which BERT leaves alone)."""
    return (0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x20000 <= code <= 0x2A6DF
            or 0x2A700 <= code <= 0x2B73F or 0x2B740 <= code <= 0x2B81F or 0x2B820 <= code <= 0x2CEAF
            or 0xF900 <= code <= 0xFAFF or 0x2F800 <= code <= 0x2FA1F)


def basic_tokenize(text: str, lowercase: bool = True) -> list[str]:
    """BERT's BasicTokenizer: clean, isolate CJK, split on whitespace, lower/strip accents, split punctuation."""
    cleaned: list[str] = []
    for character in text:
        code = ord(character)
        if code == 0 or code == 0xFFFD or is_control(character):
            continue
        if is_whitespace(character):
            cleaned.append(" ")
        elif is_cjk(code):
            cleaned.append(f" {character} ")
        else:
            cleaned.append(character)
    words: list[str] = []
    for word in unicodedata.normalize("NFC", "".join(cleaned)).split():
        if lowercase:
            word = word.lower()
            word = "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")
        current: list[str] = []
        for character in word:
            if is_punctuation(character):
                if current:
                    words.append("".join(current))
                    current = []
                words.append(character)
            else:
                current.append(character)
        if current:
            words.append("".join(current))
    return [word for word in words if word]


class WordPieceTokenizer(Tokenizer):
    """BERT-style WordPiece tokenizer (see the module docstring).

    ``encode`` adds no ``[CLS]``/``[SEP]`` (``add_special_tokens=False`` in Hugging Face terms); with
    ``allowed_special`` the named special-token strings are kept as one id each, as BERT's tokenizer does.

    Args:
        vocab_size: target vocabulary size when training (a loaded vocab.txt sets its own size).
        lowercase: lower-case and strip accents (BERT uncased); False keeps case and accents.
        max_input_chars_per_word: longer words become ``[UNK]`` (BERT: 100).
    """

    kind = "wordpiece"

    def __init__(self, vocab_size: int = 30522, lowercase: bool = True, max_input_chars_per_word: int = 100) -> None:
        if not isinstance(vocab_size, int) or vocab_size <= len(WORDPIECE_SPECIAL_TOKENS):
            raise TokenizerError(
                f"vocab_size={vocab_size!r} is too small: WordPiece needs its {len(WORDPIECE_SPECIAL_TOKENS)} "
                f"special tokens plus at least the training text's characters; use e.g. vocab_size=8000"
            )
        self._target_vocab_size = vocab_size
        self.lowercase = lowercase
        self.max_input_chars_per_word = max_input_chars_per_word
        self._vocab: list[str] = []
        self._token_to_id: dict[str, int] = {}
        self._word_cache: dict[str, list[int]] = {}

    def _set_vocab(self, vocab: list[str]) -> None:
        missing = [token for token in WORDPIECE_SPECIAL_TOKENS if token not in vocab]
        if missing:
            raise TokenizerError(f"the vocabulary lacks the special token(s) {missing}")
        self._vocab = list(vocab)
        self._token_to_id = {}
        for index, token in enumerate(self._vocab):
            self._token_to_id.setdefault(token, index)  # BERT's loader keeps the last; vocabularies are unique
        self._word_cache = {}

    # ----- interface --------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """Size of the vocabulary (the training target until trained)."""
        return len(self._vocab) if self._vocab else self._target_vocab_size

    @property
    def is_trained(self) -> bool:
        """True after training or loading a vocabulary."""
        return bool(self._vocab)

    @property
    def vocab(self) -> list[str]:
        """Tokens in id order (a copy)."""
        return list(self._vocab)

    @property
    def special_tokens(self) -> dict[str, int]:
        """``[PAD] [UNK] [CLS] [SEP] [MASK]`` -> ids."""
        self._require_trained()
        return {token: self._token_to_id[token] for token in WORDPIECE_SPECIAL_TOKENS}

    @property
    def unk_id(self) -> int:
        """Id of ``[UNK]``."""
        return self._special_id(UNK_TOKEN)

    @property
    def eos_id(self) -> int:
        """WordPiece separates documents with ``[SEP]``."""
        return self.sep_id

    # ----- training ---------------------------------------------------------------------------------
    def train(self, text: TextSource) -> "WordPieceTokenizer":
        """Learn a vocabulary of ``vocab_size`` pieces from a string or iterable of documents; returns self."""
        word_counts: Counter[str] = Counter()
        for document in iter_texts(text):
            word_counts.update(basic_tokenize(document, self.lowercase))
        if not word_counts:
            raise TokenizerError("cannot train a tokenizer on empty text: give it at least one non-empty string")
        alphabet = sorted({word[0] for word in word_counts}
                          | {CONTINUATION_PREFIX + c for word in word_counts for c in word[1:]})
        symbols = list(WORDPIECE_SPECIAL_TOKENS) + alphabet
        if len(symbols) > self._target_vocab_size:
            raise TokenizerError(
                f"vocab_size={self._target_vocab_size} is smaller than the {len(WORDPIECE_SPECIAL_TOKENS)} special "
                f"tokens plus the {len(alphabet)} characters of the training text; use at least {len(symbols)}"
            )
        symbol_id = {symbol: index for index, symbol in enumerate(symbols)}
        sequences: dict[tuple[int, ...], int] = {}
        for word, count in word_counts.items():
            pieces = [word[0]] + [CONTINUATION_PREFIX + c for c in word[1:]]
            sequences[tuple(symbol_id[piece] for piece in pieces)] = count
        # Merged strings can repeat ("a"+"##bc" and "ab"+"##c" both make "abc"), so learn a few spare merges.
        wanted = self._target_vocab_size - len(symbols)
        merges = learn_merges(sequences, wanted + wanted // 10 + 10, len(symbols))
        vocab, seen = list(symbols), set(symbols)
        for left, right in merges:
            merged = symbols[left] + symbols[right].removeprefix(CONTINUATION_PREFIX)
            symbols.append(merged)
            if merged not in seen and len(vocab) < self._target_vocab_size:
                seen.add(merged)
                vocab.append(merged)
        self._set_vocab(vocab)
        return self

    # ----- encoding ---------------------------------------------------------------------------------
    def _encode_word(self, word: str) -> list[int]:
        """Greedy longest-match-first, as BERT's WordpieceTokenizer."""
        if len(word) > self.max_input_chars_per_word:
            return [self.unk_id]
        ids: list[int] = []
        start = 0
        lookup = self._token_to_id
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                piece = word[start:end] if start == 0 else CONTINUATION_PREFIX + word[start:end]
                found = lookup.get(piece)
                if found is not None:
                    break
                end -= 1
            if found is None:
                return [self.unk_id]
            ids.append(found)
            start = end
        return ids

    def _encode_ordinary(self, text: str, out: list[int]) -> None:
        cache = self._word_cache
        for word in basic_tokenize(text, self.lowercase):
            ids = cache.get(word)
            if ids is None:
                ids = cache[word] = self._encode_word(word)
            out.extend(ids)

    def tokenize(self, text: str) -> list[str]:
        """The WordPiece strings of ``text`` (for lessons)."""
        return [self._vocab[index] for index in self.encode(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> text: tokens joined by spaces, ``##`` continuations glued to the previous token (lossy)."""
        self._require_trained()
        tokens = []
        for token_id in ids:
            if not 0 <= int(token_id) < len(self._vocab):
                raise TokenizerError(f"id {token_id} is outside 0..{len(self._vocab) - 1}, this vocabulary")
            tokens.append(self._vocab[int(token_id)])
        return " ".join(tokens).replace(" " + CONTINUATION_PREFIX, "")

    # ----- files ------------------------------------------------------------------------------------
    @classmethod
    def from_vocab_file(cls, path: str | os.PathLike[str], lowercase: bool = True,
                        max_input_chars_per_word: int = 100) -> "WordPieceTokenizer":
        """Load a standard BERT ``vocab.txt`` (one token per line; the line number is the id)."""
        path = Path(path)
        if not path.is_file():
            raise TokenizerFileError(f"no vocab.txt at {path}")
        try:
            lines = path.read_text(encoding="utf-8").split("\n")
        except UnicodeDecodeError as error:
            raise TokenizerFileError(f"{path} is not UTF-8 text ({error}); is it really a BERT vocab.txt?") from None
        if lines and lines[-1] == "":
            lines.pop()  # the final newline
        tokenizer = cls(vocab_size=max(len(lines), len(WORDPIECE_SPECIAL_TOKENS) + 1), lowercase=lowercase,
                        max_input_chars_per_word=max_input_chars_per_word)
        try:
            tokenizer._set_vocab(lines)
        except TokenizerError as error:
            raise TokenizerFileError(f"{path}: {error}; a BERT vocab.txt must contain them") from None
        return tokenizer

    def save_vocab_file(self, path: str | os.PathLike[str]) -> Path:
        """Write the vocabulary as a BERT ``vocab.txt``."""
        self._require_trained()
        path = Path(path)
        path.write_text("".join(token + "\n" for token in self._vocab), encoding="utf-8")
        return path

    def _state(self) -> dict[str, Any]:
        return {"lowercase": self.lowercase, "max_input_chars_per_word": self.max_input_chars_per_word,
                "vocab": self._vocab}

    @classmethod
    def _from_state(cls, state: dict[str, Any]) -> "WordPieceTokenizer":
        vocab = list(state["vocab"])
        if not all(isinstance(token, str) for token in vocab):
            raise ValueError("'vocab' must be a list of strings")
        tokenizer = cls(vocab_size=max(len(vocab), len(WORDPIECE_SPECIAL_TOKENS) + 1),
                        lowercase=bool(state["lowercase"]),
                        max_input_chars_per_word=int(state["max_input_chars_per_word"]))
        tokenizer._set_vocab(vocab)
        return tokenizer
