"""``PretrainingDataset``: a split of a corpus, tokenised once, served as CLM or MLM windows.

Construction (once per corpus, split and tokenizer):

1. resolve ``data_path`` to the split's text (:mod:`minipretrain.data.sources`: corpus name, folder or file;
   splits by file, or nanoGPT's 90/10 character rule);
2. if the tokenizer is not trained yet, train it on the **train** split's text (whatever split you ask for),
   so the validation/test text never leaks into the vocabulary;
3. tokenise into a flat token file in the cache (``cache_dir``, default ``<data dir>/token_cache``) unless a
   matching one exists (same tokenizer fingerprint and source sha256); read it through ``np.memmap``.

The cache is keyed by the source's *content* (sha256). A file up to ``ALWAYS_HASH_BYTES`` is hashed every
time (Tiny Shakespeare, 1.1 MB: about 1 ms of sha256, measured, beside 3-9 ms to open its cached split); a
larger one is hashed once and remembered by its (inode, size, mtime, ctime), and hashed again when any of them
moves. The change time is what catches an edit that keeps the size and restores the mtime (``cp -p``,
``rsync -t``, ``tar``): no user-level call can set it back.

Windows:

* **CLM**: documents joined by ``eos_id``; a window is ``seq_len + 1`` consecutive tokens (the objective
  uses ``ids[:, :-1]`` as inputs and ``ids[:, 1:]`` as targets). Evaluation windows start every ``seq_len``
  tokens, so every token but the first is a target exactly once; the last window is padded with
  ``pad_id`` and ``attention_mask`` is False there (targets at masked positions must be ignored).
* **MLM**: ``[CLS] + (seq_len - 2) tokens + [SEP]``; evaluation windows of ``seq_len - 2`` content tokens
  tile the split without overlap, the last one shorter: ``[CLS] ... [SEP] [PAD] ...``.

``special_tokens_mask`` is True wherever the id is one of the tokenizer's special ids (CLS, SEP, PAD, EOS, ...):
MLM never masks those positions.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from minipretrain.data.download import data_dir
from minipretrain.data.sources import TextSource, resolve_source
from minipretrain.data.token_cache import (
    TOKEN_FILE_FORMAT_VERSION,
    TokenCacheError,
    open_token_file,
    read_metadata,
    stale_reason,
    token_dtype,
    write_metadata,
    write_token_file,
)
from minipretrain.tokenizers.base import Tokenizer, TokenizerError

OBJECTIVES = ("clm", "mlm")
#: Sources up to this size are hashed on every use (sha256 runs at ~1 GB/s here: 64 MiB ≈ 65 ms).
ALWAYS_HASH_BYTES = 64 << 20
_logger = logging.getLogger(__name__)


@dataclass
class Batch:
    """A batch of windows as host NumPy arrays, all of shape (batch, window length).

    Attributes:
        input_ids: int64 token ids (CLM: ``seq_len + 1`` columns; MLM: ``seq_len``).
        attention_mask: True at real tokens, False at padding.
        special_tokens_mask: True at special tokens (CLS, SEP, PAD, EOS, ...).
    """

    input_ids: np.ndarray
    attention_mask: np.ndarray
    special_tokens_mask: np.ndarray

    @property
    def batch_size(self) -> int:
        """Number of windows."""
        return int(self.input_ids.shape[0])


class PretrainingDataset:
    """One split of a corpus as a token stream with random training windows and exact evaluation windows.

    Args:
        data_path: a registry corpus name ("tinyshakespeare", "wikitext-2"), a folder (``data/wikitext-103``)
            or a text file; see :mod:`minipretrain.data.sources`.
        tokenizer: any :class:`~minipretrain.tokenizers.Tokenizer`; trained on the train split if untrained.
        seq_len: model sequence length (>= 2 for CLM, >= 3 for MLM).
        objective: "clm" (causal LM) or "mlm" (masked LM).
        split: "train", "validation" or "test".
        cache_dir: where token files go (default ``<data dir>/token_cache``).
        seed: seeds the generator :meth:`get_batch` uses when none is given.
        text_format: WikiText variant, "tokens" (default) or "raw".
    """

    def __init__(self, data_path: Union[str, os.PathLike[str]], tokenizer: Tokenizer, seq_len: int,
                 objective: str = "clm", split: str = "train", cache_dir: Optional[Union[str, os.PathLike[str]]] = None,
                 seed: int = 0, text_format: str = "tokens") -> None:
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        minimum = 2 if objective == "clm" else 3
        if not isinstance(seq_len, (int, np.integer)) or seq_len < minimum:
            raise ValueError(f"seq_len must be an integer >= {minimum} for {objective} "
                             f"({'input + target' if objective == 'clm' else '[CLS], a token and [SEP]'}), got {seq_len!r}")
        self.tokenizer = tokenizer
        self.seq_len = int(seq_len)
        self.objective = objective
        self.split = split
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.source: TextSource = resolve_source(data_path, split, text_format)
        if not tokenizer.is_trained:
            train_source = self.source if split == "train" else resolve_source(data_path, "train", text_format)
            _logger.info("training the %s tokenizer on %s (train split)", tokenizer.kind, train_source.path)
            tokenizer.train(_non_empty(train_source))
        self.cache_dir = Path(cache_dir) if cache_dir is not None else data_dir() / "token_cache"
        self.token_path, self.metadata = self._load_or_build()
        self.tokens: np.ndarray = open_token_file(self.token_path, self.metadata["dtype"], self.metadata["num_tokens"])
        self._special_ids = np.array(sorted(tokenizer.special_ids), dtype=np.int64)
        if self.num_tokens < self.window_tokens:
            raise ValueError(
                f"the {split} split of {self.source.label} has {self.num_tokens} tokens, fewer than one window of "
                f"{self.window_tokens} ({objective}, seq_len={self.seq_len}); use a shorter seq_len or more text"
            )

    # ----- the token file ---------------------------------------------------------------------------
    def _load_or_build(self) -> tuple[Path, dict]:
        fingerprint = self.tokenizer.fingerprint()
        dtype = token_dtype(self.tokenizer.vocab_size)
        token_path = self.cache_dir / f"{self.source.cache_stem()}.{self.tokenizer.kind}-{fingerprint[:16]}.bin"
        stat = self.source.path.stat()
        expected = {"format_version": TOKEN_FILE_FORMAT_VERSION, "tokenizer_fingerprint": fingerprint,
                    "dtype": dtype.name, "source": self.source.identity()}
        previous = read_metadata(token_path) or {}
        file_key = {"source_inode": stat.st_ino, "source_size": stat.st_size, "source_mtime_ns": stat.st_mtime_ns,
                    "source_ctime_ns": stat.st_ctime_ns}
        remembered = stat.st_size > ALWAYS_HASH_BYTES and all(previous.get(k) == v for k, v in file_key.items())
        expected["source_sha256"] = previous.get("source_sha256") if remembered else self.source.sha256()
        reason = stale_reason(token_path, expected)
        if reason is None:
            if not remembered and any(previous.get(k) != v for k, v in file_key.items()):
                write_metadata(token_path, {**previous, **file_key})  # same content, new stat: remember it
            return token_path, previous
        _logger.info("building token file %s (%s)", token_path.name, reason)
        counts = self._write_tokens(token_path)
        metadata = {**expected, **counts, "tokenizer_kind": self.tokenizer.kind,
                    "vocab_size": self.tokenizer.vocab_size, **file_key}
        write_metadata(token_path, metadata)
        return token_path, metadata

    def _write_tokens(self, token_path: Path) -> dict[str, int]:
        try:
            return write_token_file(_non_empty(self.source), self.tokenizer, token_path)
        except TokenizerError as error:
            if self.split == "train":
                raise
            raise TokenizerError(
                f"the {self.split} split of {self.source.label}: {error}. A tokenizer is trained on the train split "
                "only (so the validation and test text never leak into its vocabulary), and these characters occur "
                "only outside it: train a tokenizer on text that has them and give it with data.tokenizer_path = "
                "'<file>', or use tokenizer = 'bpe' (byte-level, it encodes any text)") from None

    @property
    def num_tokens(self) -> int:
        """Tokens in the split (documents joined by eos)."""
        return int(self.metadata["num_tokens"])

    @property
    def window_tokens(self) -> int:
        """Corpus tokens one training window takes: CLM ``seq_len + 1``, MLM ``seq_len - 2``."""
        return self.seq_len + 1 if self.objective == "clm" else self.seq_len - 2

    @property
    def num_eval_windows(self) -> int:
        """How many windows :meth:`iter_eval_batches` yields in total."""
        if self.objective == "clm":
            return -(-(self.num_tokens - 1) // self.seq_len)
        return -(-self.num_tokens // self.window_tokens)

    # ----- windows ----------------------------------------------------------------------------------
    def _batch_from_starts(self, starts: np.ndarray) -> Batch:
        """Windows beginning at ``starts``; positions past the end of the split become padding."""
        length = self.window_tokens
        positions = starts[:, None] + np.arange(length)[None, :]
        valid = positions < self.num_tokens
        content = np.asarray(self.tokens[np.minimum(positions, self.num_tokens - 1)], dtype=np.int64)
        content = np.where(valid, content, self.tokenizer.pad_id)
        if self.objective == "clm":
            input_ids, attention = content, valid
        else:
            rows = np.arange(len(starts))
            content_length = valid.sum(axis=1)
            input_ids = np.full((len(starts), self.seq_len), self.tokenizer.pad_id, dtype=np.int64)
            input_ids[:, 0] = self.tokenizer.cls_id
            input_ids[:, 1:length + 1] = content
            input_ids[rows, content_length + 1] = self.tokenizer.sep_id
            attention = np.arange(self.seq_len)[None, :] <= (content_length + 1)[:, None]
        special = np.isin(input_ids, self._special_ids)
        return Batch(input_ids=input_ids, attention_mask=attention, special_tokens_mask=special)

    def get_batch(self, batch_size: int, rng: Optional[np.random.Generator] = None) -> Batch:
        """``batch_size`` full windows at uniformly random offsets (``rng``, or the dataset's seeded one)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        rng = rng if rng is not None else self.rng
        starts = rng.integers(0, self.num_tokens - self.window_tokens + 1, size=batch_size)
        return self._batch_from_starts(starts)

    def eval_window_starts(self) -> np.ndarray:
        """Start offsets of the deterministic, non-overlapping evaluation windows."""
        step = self.seq_len if self.objective == "clm" else self.window_tokens
        return np.arange(self.num_eval_windows, dtype=np.int64) * step

    def iter_eval_batches(self, batch_size: int) -> Iterator[Batch]:
        """Evaluation windows covering the split in order, ``batch_size`` at a time (the last batch may be smaller)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        starts = self.eval_window_starts()
        for first in range(0, len(starts), batch_size):
            yield self._batch_from_starts(starts[first:first + batch_size])

    def __repr__(self) -> str:
        return (f"PretrainingDataset({self.source.label!r}, split={self.split!r}, objective={self.objective!r}, "
                f"seq_len={self.seq_len}, tokens={self.num_tokens:,}, tokenizer={self.tokenizer.kind})")


def _non_empty(source: TextSource) -> Iterator[str]:
    """The source's documents, with an error when there is no text at all."""
    seen_text = False
    for document in source.documents():
        seen_text = seen_text or bool(document.strip())
        yield document
    if not seen_text:
        raise TokenCacheError(f"{source.path} ({source.split} split) contains no text: give a non-empty corpus")
