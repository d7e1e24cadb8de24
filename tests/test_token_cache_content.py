"""The token cache is keyed by the corpus's content, and a corpus it cannot read says where and why.

The case that used to serve stale tokens: a corpus edited in place at the same size with its modification time
restored (what ``cp -p``, ``rsync -t`` and ``tar`` do).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

import minipretrain.data.dataset as dataset_module
from minipretrain.data import PretrainingDataset
from minipretrain.data.sources import DataSourceError
from minipretrain.tokenizers import CharTokenizer, TokenizerError

TEXT = "abcd\nbcda\n" * 300


def dataset(path: Path, cache: Path, tokenizer: CharTokenizer, split: str = "train") -> PretrainingDataset:
    return PretrainingDataset(path, tokenizer, seq_len=8, split=split, cache_dir=cache)


def edit_in_place_keeping_size_and_mtime(path: Path, new_text: str) -> None:
    before = path.stat()
    time.sleep(0.02)  # past the file system's timestamp granularity, so the change time moves
    assert len(new_text.encode()) == before.st_size
    path.write_text(new_text)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


@pytest.mark.parametrize("always_hash_below", [getattr(dataset_module, "ALWAYS_HASH_BYTES", 1 << 26), 0])
def test_an_edit_that_keeps_size_and_mtime_is_not_served_from_the_cache(tmp_path, monkeypatch,
                                                                         always_hash_below) -> None:
    # With the default threshold a small corpus is hashed every time; with 0 only the remembered
    # (inode, size, mtime, ctime) decides when to hash, and the change time gives the edit away.
    monkeypatch.setattr(dataset_module, "ALWAYS_HASH_BYTES", always_hash_below, raising=False)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT)
    tokenizer = CharTokenizer().train("abcd\n")
    first = dataset(corpus, tmp_path / "cache", tokenizer)
    assert first.tokenizer.decode(np.asarray(first.tokens[:5]).tolist()) == "abcd\n"
    edit_in_place_keeping_size_and_mtime(corpus, TEXT.replace("abcd", "dcba"))
    second = dataset(corpus, tmp_path / "cache", tokenizer)
    assert second.tokenizer.decode(np.asarray(second.tokens[:5]).tolist()) == "dcba\n"


def test_cp_p_onto_the_corpus_is_caught(tmp_path) -> None:
    corpus, edited = tmp_path / "corpus.txt", tmp_path / "edited.txt"
    corpus.write_text(TEXT)
    edited.write_text(TEXT.replace("abcd", "dcba"))
    os.utime(edited, ns=(corpus.stat().st_atime_ns, corpus.stat().st_mtime_ns))
    tokenizer = CharTokenizer().train("abcd\n")
    dataset(corpus, tmp_path / "cache", tokenizer)
    if shutil.which("cp") is None:
        pytest.skip("no cp on this machine")
    time.sleep(0.02)
    subprocess.run(["cp", "-p", str(edited), str(corpus)], check=True)
    again = dataset(corpus, tmp_path / "cache", tokenizer)
    assert again.tokenizer.decode(np.asarray(again.tokens[:5]).tolist()) == "dcba\n"


def test_an_unchanged_large_corpus_is_not_hashed_again(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(dataset_module, "ALWAYS_HASH_BYTES", 0, raising=False)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT)
    tokenizer = CharTokenizer().train("abcd\n")
    dataset(corpus, tmp_path / "cache", tokenizer)
    hashed: list[Path] = []
    original = dataset_module.TextSource.sha256
    monkeypatch.setattr(dataset_module.TextSource, "sha256", lambda self: hashed.append(self.path) or original(self))
    dataset(corpus, tmp_path / "cache", tokenizer)
    assert hashed == []  # remembered by inode, size, mtime and ctime
    time.sleep(0.02)
    corpus.chmod(0o600)  # a metadata change moves ctime: one re-hash, same content, cache kept
    dataset(corpus, tmp_path / "cache", tokenizer)
    assert hashed == [corpus]


def test_a_corpus_that_is_not_utf8_names_the_file_and_the_byte(tmp_path) -> None:
    corpus = tmp_path / "latin1.txt"
    corpus.write_bytes(("abcd\n" * 100).encode() + "café\n".encode("latin-1") + b"abcd\n" * 100)
    with pytest.raises(DataSourceError, match=r"latin1.txt is not UTF-8 text: byte 0xe9 at offset 503.*iconv"):
        PretrainingDataset(corpus, CharTokenizer(), seq_len=8, cache_dir=tmp_path / "cache")


def test_a_character_seen_only_in_the_validation_split_says_what_to_do(tmp_path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("abcd\n" * 180 + "abcZ\n" * 20)  # Z only in the last 10%: the validation split
    tokenizer = CharTokenizer()
    PretrainingDataset(corpus, tokenizer, seq_len=8, cache_dir=tmp_path / "cache")
    with pytest.raises(TokenizerError, match=r"validation split.*\['Z'\].*trained on the train split.*tokenizer_path"):
        PretrainingDataset(corpus, tokenizer, seq_len=8, split="validation", cache_dir=tmp_path / "cache")
