"""Tokenizer speed: train byte-level BPE to 4,096 ids on Tiny Shakespeare, then encode it (not a test).

    .venv/bin/python benchmarks/tokenizer.py [path/to/input.txt] [--vocab-size 4096]

Targets (2-core machine): training < 30 s, encoding >= 1 MB/s. When Hugging Face ``tokenizers`` is installed
(``pip install tokenizers``; never a dependency of minipretrain) the same job runs there for comparison.
The corpus comes from the argument, else from the data cache/mirror (``download("tinyshakespeare")``).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from minipretrain.tokenizers import CharTokenizer, TextTokenizer, WordPieceTokenizer


def _timed(function):  # noqa: ANN001, ANN202 - tiny helper
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def _hugging_face(text: str, vocab_size: int) -> None:
    try:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: PLC0415
    except ImportError:
        print("Hugging Face tokenizers: not installed (pip install tokenizers to compare)")
        return
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["[PAD]", "[CLS]", "[SEP]", "[MASK]", "<|endoftext|>"],
                                  show_progress=False)
    _, train_seconds = _timed(lambda: tokenizer.train_from_iterator([text], trainer=trainer))
    encoding, encode_seconds = _timed(lambda: tokenizer.encode(text))
    megabytes = len(text.encode("utf-8")) / 1e6
    print(f"HF tokenizers BPE : train {train_seconds:6.2f} s | encode {encode_seconds:6.3f} s = "
          f"{megabytes / encode_seconds:6.2f} MB/s | {len(encoding.ids):,} tokens")


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", nargs="?", help="text file (default: tinyshakespeare from the data cache/mirror)")
    parser.add_argument("--vocab-size", type=int, default=4096)
    args = parser.parse_args()
    if args.path:
        path = Path(args.path)
    else:
        from minipretrain.data import download  # noqa: PLC0415
        path = download("tinyshakespeare", progress=False) / "input.txt"
    text = path.read_text(encoding="utf-8")
    megabytes = len(text.encode("utf-8")) / 1e6
    print(f"corpus: {path} ({megabytes:.2f} MB)")

    tokenizer, train_seconds = _timed(lambda: TextTokenizer(vocab_size=args.vocab_size).train(text))
    cold_ids, cold_seconds = _timed(lambda: tokenizer.encode(text))
    warm_ids, warm_seconds = _timed(lambda: tokenizer.encode(text))
    decoded, decode_seconds = _timed(lambda: tokenizer.decode(warm_ids))
    assert decoded == text and cold_ids == warm_ids
    print(f"minipretrain BPE  : train {train_seconds:6.2f} s ({len(tokenizer.merges)} merges) | encode cold "
          f"{cold_seconds:6.3f} s = {megabytes / cold_seconds:6.2f} MB/s, warm cache {megabytes / warm_seconds:6.2f} MB/s"
          f" | decode {megabytes / decode_seconds:6.2f} MB/s | {len(warm_ids):,} tokens "
          f"({len(text.encode('utf-8')) / len(warm_ids):.2f} bytes/token)")
    char, char_seconds = _timed(lambda: CharTokenizer().train(text))
    _, char_encode = _timed(lambda: char.encode(text))
    print(f"minipretrain char : train {char_seconds:6.2f} s | encode {megabytes / char_encode:6.2f} MB/s")
    wordpiece, wp_seconds = _timed(lambda: WordPieceTokenizer(vocab_size=args.vocab_size).train(text))
    _, wp_encode = _timed(lambda: wordpiece.encode(text))
    print(f"minipretrain WP   : train {wp_seconds:6.2f} s | encode {megabytes / wp_encode:6.2f} MB/s")
    _hugging_face(text, args.vocab_size)


if __name__ == "__main__":
    main()
