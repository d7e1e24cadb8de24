"""From ``data_path`` (a corpus name, a folder or a file) and a split to a stream of documents.

Resolution rules, in order:

1. an existing **file**: plain UTF-8 text, one document, split by the rule below;
2. an existing **folder**:
   * WikiText files ``wiki.{train,valid,test}.tokens`` (or ``.raw`` with ``text_format="raw"``): one file per
     split, articles are the documents; a missing split file of a registry corpus (folder named like it,
     e.g. ``data/wikitext-103``) is fetched into that folder's parent;
   * ``train.txt`` / ``valid.txt`` (or ``validation.txt``) / ``test.txt``: one plain-text file per split;
   * exactly one ``*.txt`` file: treated as rule 1;
3. a **registry name**, or a path whose last part is one (``data/wikitext-103``): fetched into the data
   folder (``./data`` or the path's parent), then as above. Plain-text corpora use their main text file.

Split rule when the source has no split files (documented for everyone who compares numbers): the first
90% of the *characters* is ``train`` and the last 10% ``validation``, exactly nanoGPT's
``data[:int(n*0.9)]`` / ``data[int(n*0.9):]``; there is no ``test`` split.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from minipretrain.data.download import data_dir, download, sha256_of_file
from minipretrain.data.readers import iter_wikitext_articles, read_text
from minipretrain.data.registry import CORPORA, MAIN_TEXT_FILE
from minipretrain.errors import MinipretrainError

SPLITS = ("train", "validation", "test")
TRAIN_FRACTION = 0.9
_WIKITEXT_FILE_SPLIT = {"train": "train", "validation": "valid", "test": "test"}
_PLAIN_SPLIT_FILES = {"train": ("train.txt",), "validation": ("valid.txt", "validation.txt"), "test": ("test.txt",)}


class DataSourceError(MinipretrainError, ValueError):
    """``data_path`` or the split cannot be resolved to text."""


@dataclass(frozen=True)
class TextSource:
    """Where a split's text lives and how to read it.

    Attributes:
        label: short readable name (for cache file names and messages).
        path: the file that holds the text.
        reader: "wikitext" (articles are documents) or "text" (the file is one document).
        split: train / validation / test.
        fraction: for the 90/10 rule, the slice of characters ("train": [0, 0.9), "validation": [0.9, 1));
            None when the file is the whole split.
    """

    label: str
    path: Path
    reader: str
    split: str
    fraction: Optional[str] = None

    def identity(self) -> dict[str, object]:
        """What the token cache records about the source (the sha256 is added by the cache)."""
        return {"path": str(self.path.resolve()), "reader": self.reader, "split": self.split,
                "split_rule": "nanogpt_90_10" if self.fraction else "file"}

    def cache_stem(self) -> str:
        """A file-name-safe stem unique to this source and split."""
        digest = hashlib.sha256(str(self.identity()).encode()).hexdigest()[:10]
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.label)
        return f"{safe}.{self.split}.{digest}"

    def sha256(self) -> str:
        """sha256 of the underlying file."""
        return sha256_of_file(self.path)

    def documents(self) -> Iterator[str]:
        """The split's documents (WikiText: streamed article by article); text that is not UTF-8 is a
        ``DataSourceError`` naming the file and the byte offset."""
        try:
            yield from self._documents()
        except UnicodeDecodeError:
            raise _not_utf8(self.path) from None

    def _documents(self) -> Iterator[str]:
        if self.reader == "wikitext":
            for article in iter_wikitext_articles(self.path):
                yield article.text
            return
        text = read_text(self.path)
        if self.fraction is not None:
            boundary = int(len(text) * TRAIN_FRACTION)
            text = text[:boundary] if self.fraction == "train" else text[boundary:]
        yield text


def _not_utf8(path: Path) -> DataSourceError:
    """Where ``path`` stops being UTF-8 (the offset counts bytes from the start of the file)."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
        offset, byte = -1, 0  # pragma: no cover - the file changed since it was read
    except UnicodeDecodeError as error:
        offset, byte = error.start, data[error.start]
    return DataSourceError(
        f"{path} is not UTF-8 text: byte 0x{byte:02x} at offset {offset} cannot be decoded; convert the file "
        f"(e.g. iconv -f latin1 -t utf-8 {path.name} > {path.stem}.utf8{path.suffix})")


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise DataSourceError(f"split must be one of {SPLITS}, got {split!r}")


def _single_file(path: Path, split: str, label: str) -> TextSource:
    if split == "test":
        raise DataSourceError(
            f"{path} has no test split: a single text is split 90/10 into train/validation (nanoGPT's rule); "
            f"use split='validation', or give a folder with test.txt"
        )
    return TextSource(label=label, path=path, reader="text", split=split, fraction=split)


def _from_folder(folder: Path, split: str, text_format: str) -> Optional[TextSource]:
    wikitext_name = f"wiki.{_WIKITEXT_FILE_SPLIT[split]}.{text_format}"
    if list(folder.glob(f"wiki.*.{text_format}")):
        path = folder / wikitext_name
        if path.is_file():
            return TextSource(folder.name, path, "wikitext", split)
        if folder.name not in CORPORA:
            raise DataSourceError(f"{folder} holds WikiText files but no {wikitext_name} for split {split!r}")
        return None  # a registry corpus with a missing file: let the caller fetch it
    for name in _PLAIN_SPLIT_FILES[split]:
        if (folder / name).is_file():
            return TextSource(folder.name, folder / name, "text", split)
    texts = sorted(folder.glob("*.txt"))
    if len(texts) == 1 and not any((folder / n).is_file() for names in _PLAIN_SPLIT_FILES.values() for n in names):
        return _single_file(texts[0], split, folder.name)
    return None


def _from_registry(name: str, root: Path, split: str, text_format: str) -> TextSource:
    corpus = CORPORA[name]
    if corpus.reader == "wikitext":
        splits = corpus.raw_splits if text_format == "raw" else corpus.splits
        file_name = splits[split]
        folder = download(corpus, files=[file_name], root=root)
        return TextSource(name, folder / file_name, "wikitext", split)
    if name not in MAIN_TEXT_FILE:
        raise DataSourceError(f"{name} is a labelled classification set, not pre-training text; "
                              f"read it with minipretrain.data.read_classification({name!r})")
    file_name = MAIN_TEXT_FILE[name]
    folder = download(corpus, files=[file_name], root=root)
    return _single_file(folder / file_name, split, name)


def resolve_source(data_path: Union[str, os.PathLike[str]], split: str = "train",
                   text_format: str = "tokens") -> TextSource:
    """Resolve ``data_path`` + ``split`` to a :class:`TextSource` (rules in the module docstring)."""
    _check_split(split)
    if text_format not in ("tokens", "raw"):
        raise DataSourceError(f"text_format must be 'tokens' or 'raw' (WikiText variants), got {text_format!r}")
    path = Path(data_path)
    if path.is_file():
        return _single_file(path, split, path.stem)
    if path.is_dir():
        source = _from_folder(path, split, text_format)
        if source is not None:
            return source
        if path.name not in CORPORA:
            raise DataSourceError(
                f"{path} has no text for split {split!r}: expected wiki.*.tokens files, train.txt/valid.txt/test.txt, "
                f"or exactly one .txt file"
            )
    if path.name in CORPORA:
        root = data_dir() if path.parent == Path(".") else path.parent
        return _from_registry(path.name, root, split, text_format)
    raise DataSourceError(
        f"data_path {str(data_path)!r} is not a file, a folder, or a known corpus; known corpora: "
        f"{', '.join(sorted(CORPORA))}"
    )
