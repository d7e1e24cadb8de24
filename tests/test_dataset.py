"""PretrainingDataset: token cache, CLM/MLM windows, masks, coverage, splits, invalidation, bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest

from minipretrain.data import (
    Batch,
    CharTokenizer,
    DataSourceError,
    MarkovCorpus,
    PretrainingDataset,
    TextTokenizer,
    TokenCacheError,
    WordPieceTokenizer,
)
from minipretrain.data.token_cache import encoding_pieces, token_dtype


@pytest.fixture(autouse=True)
def _no_mirror(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("MINIPRETRAIN_DATA_MIRROR", raising=False)
    monkeypatch.setenv("MINIPRETRAIN_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "corpus.txt"
    lines = MarkovCorpus(alphabet_size=6, order=1, seed=0).documents(60, 49, np.random.default_rng(0))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _wikitext_folder(tmp_path):
    folder = tmp_path / "mywiki"
    folder.mkdir()
    for split in ("train", "valid", "test"):
        articles = "".join(f" = {split} article {k} = \n \n Some words about {k} in {split} . \n" for k in range(6))
        (folder / f"wiki.{split}.tokens").write_text(articles, encoding="utf-8")
    return folder


def test_nanogpt_split_and_char_ids(text_file, tmp_path) -> None:
    text = text_file.read_text(encoding="utf-8")
    tokenizer = CharTokenizer()
    train = PretrainingDataset(text_file, tokenizer, seq_len=16, cache_dir=tmp_path / "cache")
    validation = PretrainingDataset(text_file, tokenizer, seq_len=16, split="validation", cache_dir=tmp_path / "cache")
    boundary = int(len(text) * 0.9)  # nanoGPT: data[:int(n*0.9)], data[int(n*0.9):]
    chars = sorted(set(text[:boundary]))
    assert tokenizer.characters == chars  # trained on the train split only
    assert np.array_equal(np.asarray(train.tokens), [chars.index(c) for c in text[:boundary]])
    assert validation.num_tokens == len(text) - boundary
    assert train.tokens.dtype == np.uint16 and isinstance(train.tokens, np.memmap)
    with pytest.raises(DataSourceError, match="no test split"):
        PretrainingDataset(text_file, tokenizer, seq_len=16, split="test", cache_dir=tmp_path / "cache")


def test_clm_train_batches(text_file, tmp_path) -> None:
    dataset = PretrainingDataset(text_file, CharTokenizer(), seq_len=32, cache_dir=tmp_path / "cache")
    batch = dataset.get_batch(8, np.random.default_rng(0))
    assert isinstance(batch, Batch) and batch.input_ids.shape == (8, 33) and batch.input_ids.dtype == np.int64
    assert batch.attention_mask.dtype == bool and batch.attention_mask.all()
    tokens = np.asarray(dataset.tokens)
    for row in batch.input_ids:  # every window is a contiguous slice of the token stream
        starts = np.flatnonzero(np.all(np.lib.stride_tricks.sliding_window_view(tokens, 33) == row, axis=1))
        assert starts.size >= 1
    again = dataset.get_batch(8, np.random.default_rng(0))
    assert np.array_equal(batch.input_ids, again.input_ids)  # seeded


@pytest.mark.parametrize("seq_len", [5, 7, 64])
def test_clm_eval_windows_predict_every_token_once(text_file, tmp_path, seq_len: int) -> None:
    dataset = PretrainingDataset(text_file, CharTokenizer(), seq_len=seq_len, split="validation",
                                 cache_dir=tmp_path / "cache")
    batches = list(dataset.iter_eval_batches(batch_size=3))
    ids = np.concatenate([b.input_ids for b in batches])
    mask = np.concatenate([b.attention_mask for b in batches])
    assert len(ids) == dataset.num_eval_windows
    # Targets are ids[:, 1:] where the attention mask holds: exactly tokens 1..n-1, each once, in order.
    targets = ids[:, 1:][mask[:, 1:]]
    assert np.array_equal(targets, np.asarray(dataset.tokens)[1:])
    assert (ids[~mask] == dataset.tokenizer.pad_id).all()
    special = np.concatenate([b.special_tokens_mask for b in batches])
    assert np.array_equal(special, np.isin(ids, list(dataset.tokenizer.special_ids)))


def test_mlm_windows_and_masks(tmp_path) -> None:
    folder = _wikitext_folder(tmp_path)
    tokenizer = WordPieceTokenizer(vocab_size=120)
    dataset = PretrainingDataset(folder, tokenizer, seq_len=12, objective="mlm", split="test", cache_dir=tmp_path / "c")
    batch = dataset.get_batch(4, np.random.default_rng(1))
    assert batch.input_ids.shape == (4, 12)
    assert (batch.input_ids[:, 0] == tokenizer.cls_id).all() and (batch.input_ids[:, -1] == tokenizer.sep_id).all()
    assert batch.special_tokens_mask[:, 0].all() and batch.special_tokens_mask[:, -1].all()
    eval_batches = list(dataset.iter_eval_batches(5))
    ids = np.concatenate([b.input_ids for b in eval_batches])
    attention = np.concatenate([b.attention_mask for b in eval_batches])
    special = np.concatenate([b.special_tokens_mask for b in eval_batches])
    # The content between [CLS] and [SEP] of all windows, in order, is the whole token stream.
    content = [row[1:attention_row.sum() - 1] for row, attention_row in zip(ids, attention)]
    assert np.array_equal(np.concatenate(content), np.asarray(dataset.tokens))
    last = len(ids) - 1
    assert ids[last, attention[last].sum() - 1] == tokenizer.sep_id
    assert (ids[~attention] == tokenizer.pad_id).all() and special[~attention].all()
    assert np.array_equal(special, np.isin(ids, list(tokenizer.special_ids)))


def test_documents_are_joined_with_eos(tmp_path) -> None:
    folder = _wikitext_folder(tmp_path)
    tokenizer = TextTokenizer(vocab_size=300)
    dataset = PretrainingDataset(folder, tokenizer, seq_len=8, split="validation", cache_dir=tmp_path / "c")
    tokens = np.asarray(dataset.tokens)
    assert int((tokens == tokenizer.eos_id).sum()) == dataset.metadata["num_documents"] - 1 == 5
    pieces = tokenizer.decode(tokens.tolist()).split("<|endoftext|>")
    assert pieces[0].startswith(" = validation article 0 = ") or pieces[0].startswith(" = valid")


def test_cache_reuse_and_invalidation(text_file, tmp_path) -> None:
    cache = tmp_path / "cache"
    tokenizer = CharTokenizer()
    first = PretrainingDataset(text_file, tokenizer, seq_len=8, cache_dir=cache)
    metadata = json.loads(first.token_path.with_suffix(".json").read_text())
    assert metadata["tokenizer_fingerprint"] == tokenizer.fingerprint()
    assert len(metadata["source_sha256"]) == 64 and metadata["num_tokens"] == first.num_tokens
    built_at = first.token_path.stat().st_mtime_ns
    second = PretrainingDataset(text_file, tokenizer, seq_len=8, cache_dir=cache)
    assert second.token_path == first.token_path and second.token_path.stat().st_mtime_ns == built_at  # reused

    # A changed source: same size, different content -> rebuilt, new tokens.
    text = text_file.read_text(encoding="utf-8")
    text_file.write_text(text[::-1][1:] + "\n", encoding="utf-8")
    third = PretrainingDataset(text_file, tokenizer, seq_len=8, cache_dir=cache)
    assert third.metadata["source_sha256"] != metadata["source_sha256"]
    expected = tokenizer.encode(text_file.read_text(encoding="utf-8")[: int(len(text) * 0.9)])
    assert np.array_equal(np.asarray(third.tokens), expected)

    # A different tokenizer never reuses the old ids.
    other = CharTokenizer().train("abcdefghijklmnopqrstuvwxyz\n")
    fourth = PretrainingDataset(text_file, other, seq_len=8, cache_dir=cache)
    assert fourth.token_path != third.token_path
    assert np.array_equal(np.asarray(fourth.tokens), other.encode(text_file.read_text(encoding="utf-8")[: int(len(text) * 0.9)]))

    # A truncated token file is detected and rebuilt.
    fourth.token_path.write_bytes(fourth.token_path.read_bytes()[:10])
    fifth = PretrainingDataset(text_file, other, seq_len=8, cache_dir=cache)
    assert fifth.num_tokens == fourth.num_tokens and fifth.token_path.stat().st_size == 2 * fifth.num_tokens


def test_bad_input(text_file, tmp_path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="seq_len"):
        PretrainingDataset(text_file, CharTokenizer(), seq_len=1, cache_dir=cache)
    with pytest.raises(ValueError, match="seq_len"):
        PretrainingDataset(text_file, CharTokenizer(), seq_len=2, objective="mlm", cache_dir=cache)
    with pytest.raises(ValueError, match="objective"):
        PretrainingDataset(text_file, CharTokenizer(), seq_len=8, objective="span", cache_dir=cache)
    with pytest.raises(ValueError, match="fewer than one window"):
        PretrainingDataset(text_file, CharTokenizer(), seq_len=10_000, split="validation", cache_dir=cache)
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises((TokenCacheError, ValueError), match="empty|no text"):
        PretrainingDataset(empty, CharTokenizer(), seq_len=4, cache_dir=cache)
    blank = tmp_path / "blank.txt"
    blank.write_text("   \n\n  ", encoding="utf-8")
    with pytest.raises(TokenCacheError, match="no text"):
        PretrainingDataset(blank, CharTokenizer().train("ab \n"), seq_len=2, cache_dir=cache)
    with pytest.raises(DataSourceError, match="known corpus"):
        PretrainingDataset(tmp_path / "nowhere", CharTokenizer(), seq_len=8, cache_dir=cache)
    with pytest.raises(DataSourceError, match="split must be"):
        PretrainingDataset(text_file, CharTokenizer(), seq_len=8, split="dev", cache_dir=cache)


class _BrokenTokenizer(CharTokenizer):
    """Claims a small vocabulary but emits an id beyond uint16."""

    def encode(self, text: str, allowed_special="none") -> list[int]:  # noqa: ANN001
        return [70_000] * len(text)


def test_ids_that_overflow_the_token_file_are_an_error(text_file, tmp_path) -> None:
    tokenizer = _BrokenTokenizer().train("abcdef\n")
    with pytest.raises(TokenCacheError, match="does not fit the uint16"):
        PretrainingDataset(text_file, tokenizer, seq_len=8, cache_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*.bin"))  # nothing half-written is left as a cache
    assert token_dtype(65_536) == np.uint16 and token_dtype(65_537) == np.uint32


def test_encoding_in_pieces_gives_the_same_ids() -> None:
    text = "First line here.\nSecond  line\n\n  indented\nthird\n" * 40
    tokenizer = TextTokenizer(vocab_size=320).train(text)
    pieces = list(encoding_pieces(text, piece_chars=30))
    assert len(pieces) > 10 and "".join(pieces) == text
    assert sum((tokenizer.encode(piece) for piece in pieces), []) == tokenizer.encode(text)


def test_registry_corpus_through_a_local_mirror(tmp_path, monkeypatch) -> None:
    from minipretrain.data import registry  # noqa: PLC0415
    import hashlib  # noqa: PLC0415

    content = MarkovCorpus(seed=1).text(2000).encode()
    toy = registry.Corpus(name="toy-text", description="toy", license="CC0",
                          files=(registry.CorpusFile("toy.txt", None, hashlib.sha256(content).hexdigest(), len(content),
                                                     source="made by the test"),))
    monkeypatch.setitem(registry.CORPORA, "toy-text", toy)
    monkeypatch.setitem(registry.MAIN_TEXT_FILE, "toy-text", "toy.txt")
    (tmp_path / "mirror" / "toy-text").mkdir(parents=True)
    (tmp_path / "mirror" / "toy-text" / "toy.txt").write_bytes(content)
    monkeypatch.setenv("MINIPRETRAIN_DATA_MIRROR", str(tmp_path / "mirror"))
    dataset = PretrainingDataset("toy-text", CharTokenizer(), seq_len=16, split="validation")
    assert (tmp_path / "data" / "toy-text" / "toy.txt").read_bytes() == content
    assert dataset.num_tokens == len(content) - int(len(content) * 0.9)
    assert (tmp_path / "data" / "token_cache").is_dir()
