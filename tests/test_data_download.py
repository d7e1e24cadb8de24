"""Corpus registry, download (file:// URLs and a local mirror, never the network), checksums, CLI."""
from __future__ import annotations

import argparse
import hashlib
import re
import zipfile

import pytest

from minipretrain.data import CORPORA, ChecksumError, Corpus, CorpusFile, DownloadError, download, get_corpus
from minipretrain.data import cli

CONTENT = b"tiny corpus\nwith two lines\n"
SHA = hashlib.sha256(CONTENT).hexdigest()


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("MINIPRETRAIN_DATA_MIRROR", raising=False)
    monkeypatch.setenv("MINIPRETRAIN_DATA_DIR", str(tmp_path / "cache"))


def _corpus(url: str | None, sha256: str | None = SHA, size: int | None = len(CONTENT), **extra) -> Corpus:
    return Corpus(name="toy", description="toy corpus", license="CC0",
                  files=(CorpusFile("toy.txt", url, sha256, size, **extra),))


def test_registry_entries_are_complete() -> None:
    required = {"tinyshakespeare", "wikitext-2", "wikitext-103", "brown", "sst2", "agnews", "trec", "spamassassin",
                "kjv-bible", "devils-dictionary", "wikipedia-markup", "common-crawl-sample"}
    assert required <= set(CORPORA)
    for corpus in CORPORA.values():
        assert corpus.description and corpus.license and corpus.files
        for corpus_file in corpus.files:
            assert corpus_file.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", corpus_file.sha256)
            assert corpus_file.url is not None or corpus_file.source  # mirror-only files say where they came from
            if corpus_file.sha256 is None:
                assert "checksum" in corpus_file.source  # unknown checksums are marked, never invented
    shakespeare = get_corpus("tinyshakespeare").file("input.txt")
    assert shakespeare.size == 1_115_394 and shakespeare.sha256.startswith("86c4e6aa")
    assert get_corpus("wikitext-103").file("wiki.train.tokens").sha256 is None
    with pytest.raises(KeyError, match="known corpora"):
        get_corpus("no-such-corpus")


def test_download_from_file_url_verifies_and_is_atomic(tmp_path) -> None:
    source = tmp_path / "upstream.txt"
    source.write_bytes(CONTENT)
    folder = download(_corpus(source.as_uri()), progress=False)
    assert (folder / "toy.txt").read_bytes() == CONTENT
    assert folder == tmp_path / "cache" / "toy"
    assert not list(folder.glob(".*.part"))  # no temporary left behind


def test_checksum_mismatch_is_an_error_and_the_file_is_not_used(tmp_path) -> None:
    source = tmp_path / "upstream.txt"
    source.write_bytes(CONTENT + b"tampered")
    with pytest.raises(ChecksumError, match="not the registered file"):
        download(_corpus(source.as_uri(), size=None), root=tmp_path / "cache", progress=False)
    folder = tmp_path / "cache" / "toy"
    assert not (folder / "toy.txt").exists() and not list(folder.iterdir())


def test_mirror_is_used_and_checked(tmp_path, monkeypatch) -> None:
    mirror = tmp_path / "mirror"
    (mirror / "toy").mkdir(parents=True)
    (mirror / "toy" / "toy.txt").write_bytes(CONTENT)
    monkeypatch.setenv("MINIPRETRAIN_DATA_MIRROR", str(mirror))
    folder = download(_corpus("https://invalid.example/toy.txt"), progress=False)  # the URL is never touched
    assert (folder / "toy.txt").read_bytes() == CONTENT
    (mirror / "toy" / "toy.txt").write_bytes(b"corrupted mirror copy!!!!!!")
    with pytest.raises(ChecksumError):
        download(_corpus(None), root=tmp_path / "other", progress=False)


def test_cached_file_that_no_longer_matches_is_fetched_again(tmp_path) -> None:
    source = tmp_path / "upstream.txt"
    source.write_bytes(CONTENT)
    folder = download(_corpus(source.as_uri()), progress=False)
    (folder / "toy.txt").write_bytes(b"x" * len(CONTENT))
    download(_corpus(source.as_uri()), progress=False)
    assert (folder / "toy.txt").read_bytes() == CONTENT


def test_offline_error_names_url_file_and_mirror_variable(tmp_path) -> None:
    url = (tmp_path / "missing.txt").as_uri()
    with pytest.raises(DownloadError) as error:
        download(_corpus(url), progress=False)
    message = str(error.value)
    assert url in message and "toy/toy.txt" in message and "MINIPRETRAIN_DATA_MIRROR" in message


def test_mirror_only_file_without_mirror_says_what_to_do() -> None:
    with pytest.raises(DownloadError, match="MINIPRETRAIN_DATA_MIRROR"):
        download(_corpus(None, source="derived for the mirror"), progress=False)


def test_archive_member_is_extracted(tmp_path) -> None:
    archive = tmp_path / "toy-v1.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("toy-v1/toy.txt", CONTENT)
    corpus = _corpus(archive.as_uri(), sha256=None, size=None, archive_member="toy-v1/toy.txt",
                     source="member of an archive; checksum unknown")
    folder = download(corpus, progress=False)
    assert (folder / "toy.txt").read_bytes() == CONTENT


def test_cli_list_and_download(tmp_path, monkeypatch, capsys) -> None:
    mirror = tmp_path / "mirror"
    (mirror / "tinyshakespeare").mkdir(parents=True)
    (mirror / "tinyshakespeare" / "input.txt").write_bytes(b"not the real file")
    monkeypatch.setenv("MINIPRETRAIN_DATA_MIRROR", str(mirror))
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["data", "list"])
    assert args.func(args) == 0
    assert "wikitext-103" in capsys.readouterr().out
    assert cli.main(["download", "tinyshakespeare", "--quiet"]) == 1  # the fake mirror copy fails its checksum
    assert "expected" in capsys.readouterr().err
    assert cli.main(["download", "no-such-corpus"]) == 2
