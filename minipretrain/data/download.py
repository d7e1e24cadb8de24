"""Fetch registry corpora into the local cache: offline mirror or download, checksum, atomic writes.

Where files go: ``<data dir>/<corpus>/<file>``; the data dir is ``./data`` (under the current working
directory) unless ``MINIPRETRAIN_DATA_DIR`` says otherwise.

Where files come from, in order:

1. the cache itself, when the file is already there and matches its checksum (a mismatching cached file
   is discarded and fetched again);
2. the offline mirror ``MINIPRETRAIN_DATA_MIRROR=<dir>`` with the same ``<corpus>/<file>`` layout;
3. the upstream URL (``urllib``; a zip archive is downloaded once into ``<corpus>/.archives`` and the
   member extracted).

Every file is written to a temporary name in the target folder, verified (size and sha256 when known),
and only then renamed into place, so an interrupted or corrupted transfer never leaves a file that looks
valid. A checksum mismatch raises :class:`ChecksumError` and the bad bytes are deleted.
"""
from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO, Optional, Union

from tqdm import tqdm

from minipretrain.files import atomic_file
from minipretrain.data.registry import Corpus, CorpusFile, get_corpus
from minipretrain.errors import MinipretrainError

DATA_DIR_ENV = "MINIPRETRAIN_DATA_DIR"
MIRROR_ENV = "MINIPRETRAIN_DATA_MIRROR"
_CHUNK_BYTES = 1 << 20
_logger = logging.getLogger(__name__)


class DownloadError(MinipretrainError, RuntimeError):
    """A corpus file could not be fetched (offline, no mirror, no URL, bad archive)."""


class ChecksumError(DownloadError):
    """A fetched file's size or sha256 differs from the registry; the file was deleted, never used."""


def data_dir() -> Path:
    """The cache folder for corpora: ``$MINIPRETRAIN_DATA_DIR`` or ``./data``."""
    return Path(os.environ.get(DATA_DIR_ENV) or Path.cwd() / "data")


def mirror_dir() -> Optional[Path]:
    """The offline mirror from ``$MINIPRETRAIN_DATA_MIRROR``, or None when unset."""
    value = os.environ.get(MIRROR_ENV)
    return Path(value) if value else None


def sha256_of_file(path: Union[str, os.PathLike[str]]) -> str:
    """sha256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _mismatch(path: Path, expected: CorpusFile) -> Optional[str]:
    """Why ``path`` does not match the registry entry, or None when it matches (or nothing is known)."""
    if expected.size is not None and path.stat().st_size != expected.size:
        return f"size {path.stat().st_size:,} bytes, expected {expected.size:,}"
    if expected.sha256 is not None:
        actual = sha256_of_file(path)
        if actual != expected.sha256:
            return f"sha256 {actual}, expected {expected.sha256}"
    return None


def _copy_stream(source: BinaryIO, target: BinaryIO, total: Optional[int], label: str, progress: bool) -> None:
    with tqdm(total=total, unit="B", unit_scale=True, desc=label, disable=not progress, leave=False) as bar:
        for chunk in iter(lambda: source.read(_CHUNK_BYTES), b""):
            target.write(chunk)
            bar.update(len(chunk))


def _write_verified(folder: Path, corpus_file: CorpusFile, corpus_name: str, fill: Callable[[BinaryIO], None], origin: str) -> Path:
    """Write through ``fill(temp_file)``, verify against the registry, then rename into place."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / corpus_file.name

    def verify(temporary: Path) -> None:
        problem = _mismatch(temporary, corpus_file)
        if problem:
            raise ChecksumError(
                f"{corpus_name}/{corpus_file.name} from {origin} is not the registered file: {problem}. "
                f"It was deleted and not used. The source may be corrupted or changed upstream; "
                f"check it, or fetch the file from another mirror."
            )
        if corpus_file.sha256 is None:
            _logger.warning("%s/%s has no registered checksum; it was not verified", corpus_name, corpus_file.name)

    with atomic_file(target, "wb", suffix=".part", verify=verify) as temporary_file:
        fill(temporary_file)
    return target


def _offline_error(corpus: Corpus, corpus_file: CorpusFile, url: str, error: Exception, target: Path) -> DownloadError:
    return DownloadError(
        f"could not download {corpus.name}/{corpus_file.name} from {url} ({error}). If this machine is offline, "
        f"set {MIRROR_ENV}=<dir> to a mirror folder holding {corpus.name}/{corpus_file.name}, "
        f"or put the file at {target} yourself."
    )


def _open_url(url: str):  # noqa: ANN202 - urllib's response type
    return urllib.request.urlopen(url, timeout=60)  # noqa: S310 - registry URLs (https or file://)


def _fetch_archive(corpus: Corpus, corpus_file: CorpusFile, folder: Path, progress: bool) -> Path:
    """Download the zip that holds ``corpus_file`` once (kept under ``<corpus>/.archives``)."""
    assert corpus_file.url is not None
    archive_folder = folder / ".archives"
    archive = archive_folder / corpus_file.url.rsplit("/", 1)[-1]
    if archive.is_file():
        return archive
    archive_entry = CorpusFile(archive.name, corpus_file.url, None, None)
    try:
        with _open_url(corpus_file.url) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            return _write_verified(archive_folder, archive_entry, corpus.name,
                                   lambda out: _copy_stream(response, out, total, archive.name, progress), corpus_file.url)
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise _offline_error(corpus, corpus_file, corpus_file.url, error, folder / corpus_file.name) from error


def fetch_file(corpus: Corpus, corpus_file: CorpusFile, root: Optional[Path] = None, progress: bool = True,
               force: bool = False) -> Path:
    """Make ``<root>/<corpus>/<file>`` present and verified; returns its path (see the module docstring)."""
    folder = (root or data_dir()) / corpus.name
    target = folder / corpus_file.name
    if target.is_file() and not force:
        problem = _mismatch(target, corpus_file)
        if problem is None:
            return target
        _logger.warning("cached %s does not match the registry (%s); fetching it again", target, problem)
        target.unlink()

    mirror = mirror_dir()
    mirrored = mirror / corpus.name / corpus_file.name if mirror else None
    if mirrored is not None and mirrored.is_file():
        def copy_from_mirror(out: BinaryIO) -> None:
            with open(mirrored, "rb") as source:
                _copy_stream(source, out, mirrored.stat().st_size, corpus_file.name, progress)
        return _write_verified(folder, corpus_file, corpus.name, copy_from_mirror, f"the mirror ({mirrored})")

    if corpus_file.url is None:
        where = f"the mirror {mirror} has no {corpus.name}/{corpus_file.name}" if mirror else f"{MIRROR_ENV} is not set"
        raise DownloadError(
            f"{corpus.name}/{corpus_file.name} has no download URL ({corpus_file.source}) and {where}: set "
            f"{MIRROR_ENV}=<dir> to a mirror folder holding {corpus.name}/{corpus_file.name}, or put it at {target}."
        )

    if corpus_file.archive_member is not None:
        archive = _fetch_archive(corpus, corpus_file, folder, progress)
        try:
            with zipfile.ZipFile(archive) as zipped, zipped.open(corpus_file.archive_member) as member:
                size = zipped.getinfo(corpus_file.archive_member).file_size
                return _write_verified(folder, corpus_file, corpus.name,
                                       lambda out: _copy_stream(member, out, size, corpus_file.name, progress),
                                       f"{corpus_file.url} ({corpus_file.archive_member})")
        except (zipfile.BadZipFile, KeyError) as error:
            archive.unlink(missing_ok=True)
            raise DownloadError(f"{archive} is not a valid archive holding {corpus_file.archive_member} ({error}); "
                                f"it was deleted, try again") from error

    url = corpus_file.url
    try:
        with _open_url(url) as response:
            total = int(response.headers.get("Content-Length") or 0) or corpus_file.size
            return _write_verified(folder, corpus_file, corpus.name,
                                   lambda out: _copy_stream(response, out, total, corpus_file.name, progress), url)
    except (urllib.error.URLError, OSError, ValueError) as error:
        if isinstance(error, DownloadError):
            raise
        raise _offline_error(corpus, corpus_file, url, error, target) from error


def download(name: Union[str, Corpus], files: Optional[Iterable[str]] = None,
             root: Optional[Union[str, os.PathLike[str]]] = None, progress: bool = True, force: bool = False) -> Path:
    """Fetch a registry corpus (all its files, or only ``files``) and return its folder.

    Args:
        name: a registry name (see ``minipretrain.data.CORPORA``) or a :class:`Corpus`.
        files: file names to fetch; default all.
        root: data folder; default :func:`data_dir` (``./data`` or ``$MINIPRETRAIN_DATA_DIR``).
        progress: show a tqdm progress bar.
        force: fetch again even when a verified copy is cached.
    """
    corpus = name if isinstance(name, Corpus) else get_corpus(name)
    root_path = Path(root) if root is not None else data_dir()
    wanted = [corpus.file(file_name) for file_name in files] if files is not None else list(corpus.files)
    for corpus_file in wanted:
        fetch_file(corpus, corpus_file, root_path, progress=progress, force=force)
    return root_path / corpus.name

