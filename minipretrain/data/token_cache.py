"""Token files: a split tokenised once, stored as a flat uint16/uint32 array, read back with ``np.memmap``.

Each token file ``<stem>.<tokenizer kind>-<fingerprint>.bin`` has a metadata JSON next to it recording the
tokenizer fingerprint, the source file's sha256 (and size/mtime, to skip re-hashing an unchanged file),
the dtype and the counts. A cache is reused only when all of them match; otherwise it is rebuilt, never
silently reused. Files are written to a temporary name and renamed, so a crash leaves no half file.

Documents are joined with the end-of-document id (``eos_id``), one between each pair of documents.
Long documents are encoded in pieces of about 1 MB, cut only right after a newline that has non-space
characters on both sides: for BPE (GPT-2 split), WordPiece and characters such a cut does not change the
tokens, and it keeps memory bounded (never the whole corpus as one Python list of ints).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Optional

import numpy as np
import regex

from minipretrain.errors import MinipretrainError
from minipretrain.files import atomic_file
from minipretrain.tokenizers.base import Tokenizer

TOKEN_FILE_FORMAT_VERSION = 1
ENCODE_PIECE_CHARS = 1 << 20
_SAFE_CUT = regex.compile(r"(?<=\S\n)(?=\S)")
_logger = logging.getLogger(__name__)


class TokenCacheError(MinipretrainError, ValueError):
    """Token ids that do not fit the token file, or a corpus with no text."""


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits (vocab_size <= 65,536), else uint32."""
    if vocab_size <= 1 << 16:
        return np.dtype(np.uint16)
    if vocab_size <= 1 << 32:
        return np.dtype(np.uint32)
    raise TokenCacheError(f"vocab_size={vocab_size} does not fit a uint32 token file")


def encoding_pieces(text: str, piece_chars: int = ENCODE_PIECE_CHARS) -> Iterator[str]:
    """Cut ``text`` into pieces of at least ``piece_chars`` characters at token-safe newlines."""
    start = 0
    while len(text) - start > piece_chars:
        match = _SAFE_CUT.search(text, start + piece_chars)
        if match is None:
            break
        yield text[start:match.start()]
        start = match.start()
    yield text[start:]


def write_token_file(documents: Iterable[str], tokenizer: Tokenizer, path: Path,
                     piece_chars: int = ENCODE_PIECE_CHARS) -> dict[str, int]:
    """Encode ``documents`` (eos between them) into ``path``; returns the token and document counts."""
    dtype = token_dtype(tokenizer.vocab_size)
    limit = int(np.iinfo(dtype).max)
    eos = np.array([tokenizer.eos_id], dtype=dtype)
    counts = {"num_tokens": 0, "num_documents": 0}

    def write(file: Any) -> None:
        for document in documents:
            if counts["num_documents"] > 0:
                file.write(eos.tobytes())
                counts["num_tokens"] += 1
            counts["num_documents"] += 1
            for piece in encoding_pieces(document, piece_chars):
                ids = np.asarray(tokenizer.encode(piece), dtype=np.int64)
                if ids.size and (ids.max() > limit or ids.min() < 0):
                    raise TokenCacheError(
                        f"token id {int(ids.max())} does not fit the {dtype.name} token file (ids 0..{limit}); the "
                        f"tokenizer produced an id outside its vocab_size={tokenizer.vocab_size}"
                    )
                file.write(ids.astype(dtype).tobytes())
                counts["num_tokens"] += int(ids.size)

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, "wb") as file:
        write(file)
    return counts


def metadata_path(token_path: Path) -> Path:
    """The metadata JSON that belongs to a token file."""
    return token_path.with_suffix(".json")


def read_metadata(token_path: Path) -> Optional[dict[str, Any]]:
    """The token file's metadata, or None if missing or unreadable."""
    try:
        return json.loads(metadata_path(token_path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def write_metadata(token_path: Path, metadata: dict[str, Any]) -> None:
    """Write the metadata JSON atomically."""
    with atomic_file(metadata_path(token_path), "w") as file:
        json.dump(metadata, file, indent=1, sort_keys=True)


def stale_reason(token_path: Path, expected: dict[str, Any]) -> Optional[str]:
    """Why the cached token file cannot be reused (None when it can): compares ``expected`` keys."""
    if not token_path.is_file():
        return "no token file yet"
    metadata = read_metadata(token_path)
    if metadata is None:
        return "its metadata is missing or corrupted"
    for key, value in expected.items():
        if metadata.get(key) != value:
            return f"{key} changed ({metadata.get(key)!r} -> {value!r})"
    size = token_path.stat().st_size
    if size != metadata.get("num_tokens", -1) * np.dtype(metadata.get("dtype", "uint8")).itemsize:
        return f"the token file has {size} bytes, which does not match its metadata"
    return None


def open_token_file(token_path: Path, dtype: str, num_tokens: int) -> np.ndarray:
    """Read-only memmap of the tokens (a corpus larger than memory is paged in as needed)."""
    if num_tokens == 0:
        return np.zeros(0, dtype=dtype)
    return np.memmap(token_path, dtype=dtype, mode="r", shape=(num_tokens,))
