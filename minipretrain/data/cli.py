"""``data`` command: ``data list`` shows the registry, ``data download NAME`` fetches a corpus.

``add_parser(subparsers)`` plugs it into the main ``python -m minipretrain`` parser; until then
``python -m minipretrain.data.cli download tinyshakespeare`` works on its own.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional

from minipretrain.data.download import MIRROR_ENV, DownloadError, data_dir, download, mirror_dir
from minipretrain.data.registry import get_corpus, list_corpora


def _list(args: argparse.Namespace) -> int:
    """Print every corpus with its files, sizes and whether a checksum is registered."""
    for corpus in list_corpora():
        print(f"{corpus.name:<20} {corpus.description}")
        print(f"{'':<20} license: {corpus.license}")
        for corpus_file in corpus.files:
            size = f"{corpus_file.size:,} B" if corpus_file.size is not None else "size unknown"
            checksum = "sha256 ok" if corpus_file.sha256 else "no checksum"
            origin = "mirror only" if corpus_file.url is None else ("zip" if corpus_file.archive_member else "url")
            print(f"{'':<22}{corpus_file.name:<40} {size:>15}  {checksum:<11}  {origin}")
    return 0


def _download(args: argparse.Namespace) -> int:
    """Fetch one corpus (or some of its files) into the data folder."""
    try:
        corpus = get_corpus(args.name)
    except KeyError as error:
        print(f"error: {error.args[0]}", file=sys.stderr)
        return 2
    mirror = mirror_dir()
    print(f"{corpus.name}: into {args.root or data_dir()} "
          f"({f'mirror {mirror}' if mirror else f'no mirror ({MIRROR_ENV} unset), downloading'})")
    try:
        folder = download(corpus, files=args.files or None, root=args.root, progress=not args.quiet, force=args.force)
    except (DownloadError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for corpus_file in corpus.files:
        path = folder / corpus_file.name
        if path.is_file():
            verified = "sha256 verified" if corpus_file.sha256 else "NOT verified (no registered checksum)"
            print(f"  {path}  {path.stat().st_size:,} bytes  {verified}")
    return 0


def add_parser(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register the ``data`` command (``list`` and ``download NAME``) on a subparsers object."""
    data = subparsers.add_parser("data", help="list and download corpora")
    commands = data.add_subparsers(dest="data_command", required=True)
    listing = commands.add_parser("list", help="show the corpus registry")
    listing.set_defaults(func=_list)
    fetch = commands.add_parser("download", help="fetch a corpus into the data folder (mirror or URL)")
    fetch.add_argument("name", help="corpus name (see `data list`)")
    fetch.add_argument("--files", nargs="+", help="only these files of the corpus")
    fetch.add_argument("--root", help="data folder (default ./data or $MINIPRETRAIN_DATA_DIR)")
    fetch.add_argument("--force", action="store_true", help="fetch again even if a verified copy exists")
    fetch.add_argument("--quiet", action="store_true", help="no progress bar")
    fetch.set_defaults(func=_download)


def main(argv: Optional[list[str]] = None) -> int:
    """Stand-alone entry: ``python -m minipretrain.data.cli {list,download NAME}``."""
    parser = argparse.ArgumentParser(prog="python -m minipretrain.data.cli")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_parser(subparsers)
    args = parser.parse_args(["data", *(argv if argv is not None else sys.argv[1:])])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
