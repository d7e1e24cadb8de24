"""Byte-level BPE (GPT-2 style), trained from scratch: ``TextTokenizer``.

Ids, as minbpe counts them:

* ``0..255`` are the raw bytes, so every string can be encoded (UTF-8; lone surrogates pass through);
* ``256..`` are the learned merges, in the order they were learned;
* the five special tokens take the *last five ids* of ``vocab_size``: ``[PAD] [CLS] [SEP] [MASK]
  <|endoftext|>`` -> ``vocab_size - 5 .. vocab_size - 1``. They come after the merges, are never part of
  a merge, and their ids are known before training (a model can be built first).

So ``vocab_size = 256 + number of merges + 5``. If the training text runs out of pairs first, fewer merges
are learned and the ids between the last merge and the first special token stay unused.

Text is first split by the GPT-2 pre-tokenisation pattern (the ``regex`` package, for ``\\p{L}``); merges
never cross those pieces. Special-token strings in training text are dropped (they are document
boundaries, not language). When encoding, they stay ordinary text unless ``allowed_special`` names them.

Training uses incremental pair counts (see :mod:`minipretrain.tokenizers.merges` for the deterministic
tie-breaking); encoding caches the ids of each pre-tokenised piece, since natural text repeats its words.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import regex

from minipretrain.tokenizers.base import (
    special_splitter,
    SPECIAL_TOKENS,
    TextSource,
    Tokenizer,
    TokenizerError,
    iter_texts,
)
from minipretrain.tokenizers.merges import Pair, learn_merges

#: GPT-2's pre-tokenisation pattern (contractions, letters, numbers, other symbols, whitespace).
GPT2_SPLIT_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
NUM_BYTES = 256
# Encoding caches this many distinct pieces; beyond it the cache starts over (bounded memory).
_MAX_CACHE_ENTRIES = 1_000_000


class TextTokenizer(Tokenizer):
    """Byte-level BPE tokenizer with the GPT-2 split pattern; see the module docstring for the id layout.

    Args:
        vocab_size: total number of ids, bytes + merges + 5 special tokens (at least 261).
        pattern: the pre-tokenisation regex (default: GPT-2's).
    """

    kind = "bpe"

    def __init__(self, vocab_size: int = 50000, pattern: str = GPT2_SPLIT_PATTERN) -> None:
        minimum = NUM_BYTES + len(SPECIAL_TOKENS)
        if not isinstance(vocab_size, int) or vocab_size < minimum:
            raise TokenizerError(
                f"vocab_size={vocab_size!r} is too small for a byte-level BPE: it needs {NUM_BYTES} byte ids "
                f"plus {len(SPECIAL_TOKENS)} special tokens, so at least {minimum} (with no merges); "
                f"use e.g. vocab_size=4096"
            )
        self._vocab_size = vocab_size
        self.pattern = pattern
        self._compiled_pattern = regex.compile(pattern)
        first_special = vocab_size - len(SPECIAL_TOKENS)
        self._special_tokens = {token: first_special + offset for offset, token in enumerate(SPECIAL_TOKENS)}
        self._id_to_special = {index: token for token, index in self._special_tokens.items()}
        self._all_special_splitter = special_splitter(SPECIAL_TOKENS)
        self.merges: list[Pair] = []
        self._trained = False
        self._set_merges([])

    # ----- interface --------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """Total ids: 256 bytes + merges + 5 special tokens (fixed at construction)."""
        return self._vocab_size

    @property
    def is_trained(self) -> bool:
        """True after :meth:`train` or loading."""
        return self._trained

    @property
    def special_tokens(self) -> dict[str, int]:
        """Special-token string -> id (the last five ids)."""
        return dict(self._special_tokens)

    @property
    def max_merges(self) -> int:
        """How many merges ``vocab_size`` leaves room for."""
        return self._vocab_size - NUM_BYTES - len(SPECIAL_TOKENS)

    def _set_merges(self, merges: list[Pair]) -> None:
        self.merges = list(merges)
        self._merge_ranks: dict[Pair, int] = {pair: NUM_BYTES + rank for rank, pair in enumerate(self.merges)}
        self._token_bytes: list[bytes] = [bytes([value]) for value in range(NUM_BYTES)]
        for left, right in self.merges:
            self._token_bytes.append(self._token_bytes[left] + self._token_bytes[right])
        self._piece_cache: dict[str, list[int]] = {}

    def train(self, text: TextSource) -> "TextTokenizer":
        """Learn ``vocab_size - 261`` merges from a string or an iterable of documents; returns self.

        Special-token strings in the text are removed first, so merges never involve them.
        """
        piece_counts: Counter[str] = Counter()
        for document in iter_texts(text):
            for part in self._all_special_splitter.split(document)[::2]:  # even items: text between specials
                piece_counts.update(self._compiled_pattern.findall(part))
        if not piece_counts:
            raise TokenizerError("cannot train a tokenizer on empty text: give it at least one non-empty string")
        word_counts: dict[tuple[int, ...], int] = {}
        for piece, count in piece_counts.items():
            word = tuple(piece.encode("utf-8", "surrogatepass"))
            word_counts[word] = word_counts.get(word, 0) + count
        self._set_merges(learn_merges(word_counts, self.max_merges, NUM_BYTES))
        self._trained = True
        return self

    def _encode_piece(self, piece: str) -> list[int]:
        """BPE of one pre-tokenised piece: apply the earliest-learned merge present until none applies."""
        ids = list(piece.encode("utf-8", "surrogatepass"))
        ranks = self._merge_ranks
        while len(ids) >= 2:
            best_rank, best_index = None, -1
            for index in range(len(ids) - 1):
                rank = ranks.get((ids[index], ids[index + 1]))
                if rank is not None and (best_rank is None or rank < best_rank):
                    best_rank, best_index = rank, index
            if best_rank is None:
                break
            pair = (ids[best_index], ids[best_index + 1])
            merged: list[int] = ids[:best_index]
            index = best_index
            while index < len(ids):
                if index + 1 < len(ids) and ids[index] == pair[0] and ids[index + 1] == pair[1]:
                    merged.append(best_rank)
                    index += 2
                else:
                    merged.append(ids[index])
                    index += 1
            ids = merged
        return ids

    def _encode_ordinary(self, text: str, out: list[int]) -> None:
        cache = self._piece_cache
        if len(cache) > _MAX_CACHE_ENTRIES:
            cache.clear()
        for piece in self._compiled_pattern.findall(text):
            ids = cache.get(piece)
            if ids is None:
                ids = cache[piece] = self._encode_piece(piece)
            out.extend(ids)

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes one id stands for (special tokens: their UTF-8 text)."""
        if token_id in self._id_to_special:
            return self._id_to_special[token_id].encode("utf-8")
        if 0 <= token_id < len(self._token_bytes):
            return self._token_bytes[token_id]
        raise TokenizerError(
            f"id {token_id} is not in this tokenizer's vocabulary (bytes 0..255, merges 256.."
            f"{len(self._token_bytes) - 1}, special tokens {min(self._id_to_special)}..{max(self._id_to_special)})"
        )

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> text. Exact inverse of :meth:`encode`; invalid UTF-8 (partial ids) becomes U+FFFD."""
        self._require_trained()
        data = b"".join(self.token_bytes(int(token_id)) for token_id in ids)
        try:
            return data.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return data.decode("utf-8", "replace")

    # ----- persistence ------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        readable = [self._token_bytes[NUM_BYTES + rank].decode("utf-8", "backslashreplace")
                    for rank in range(len(self.merges))]
        return {
            "vocab_size": self._vocab_size,
            "pattern": self.pattern,
            "special_tokens": self._special_tokens,
            "merges": [list(pair) for pair in self.merges],
            "merged_tokens_readable": readable,  # for people reading the file; ignored on load
        }

    def _fingerprint_payload(self) -> dict[str, Any]:
        """Hash what defines the encoding (vocab_size, pattern, specials, merges), not the readable copy."""
        payload = self.to_dict()
        payload.pop("merged_tokens_readable")
        return payload

    @classmethod
    def _from_state(cls, state: dict[str, Any]) -> "TextTokenizer":
        tokenizer = cls(vocab_size=int(state["vocab_size"]), pattern=str(state["pattern"]))
        if dict(state["special_tokens"]) != tokenizer._special_tokens:
            raise ValueError(f"special_tokens {state['special_tokens']} do not match the layout of vocab_size")
        merges: list[Pair] = []
        for rank, pair in enumerate(state["merges"]):
            left, right = (int(value) for value in pair)
            if not (0 <= left < NUM_BYTES + rank and 0 <= right < NUM_BYTES + rank):
                raise ValueError(f"merge {rank} = {pair} refers to an id that does not exist yet")
            merges.append((left, right))
        if len(merges) > tokenizer.max_merges:
            raise ValueError(f"{len(merges)} merges do not fit in vocab_size={tokenizer.vocab_size}")
        tokenizer._set_merges(merges)
        tokenizer._trained = True
        return tokenizer
