"""Byte-level BPE, char tokenizer, the shared interface, saving/loading and bad input."""
from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minipretrain.tokenizers import (
    EOS_TOKEN,
    MASK_TOKEN,
    SPECIAL_TOKENS,
    CharTokenizer,
    NotTrainedError,
    TextTokenizer,
    Tokenizer,
    TokenizerError,
    TokenizerFileError,
    WordPieceTokenizer,
    load_tokenizer,
)
from minipretrain.tokenizers.merges import learn_merges, merge_pair

CORPUS = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\r\n\nAll:\nSpeak, speak.\n"
    "Café naïve coöperate — 日本語のテキスト 🙂🙂 emoji, tabs\tand  double  spaces. It's we'll they've 12345.\n"
) * 20


@pytest.fixture(scope="module")
def bpe() -> TextTokenizer:
    return TextTokenizer(vocab_size=300).train(CORPUS)


def test_known_vector_aaabdaaabac() -> None:
    # Wikipedia's example: aa -> Z, ab -> Y, ZY -> X; ids as minbpe counts them.
    tokenizer = TextTokenizer(vocab_size=256 + 3 + len(SPECIAL_TOKENS)).train("aaabdaaabac")
    assert tokenizer.merges == [(97, 97), (97, 98), (256, 257)]
    assert tokenizer.encode("aaabdaaabac") == [258, 100, 258, 97, 99]
    assert tokenizer.decode([258, 100, 258, 97, 99]) == "aaabdaaabac"


def test_special_ids_come_after_the_merges(bpe: TextTokenizer) -> None:
    assert bpe.vocab_size == 300
    assert sorted(bpe.special_ids) == list(range(295, 300))
    assert (bpe.pad_id, bpe.cls_id, bpe.sep_id, bpe.mask_id, bpe.eos_id) == (295, 296, 297, 298, 299)
    assert len(bpe.merges) == 300 - 256 - 5
    assert all(max(pair) < 256 + rank for rank, pair in enumerate(bpe.merges))  # merges never touch specials


def test_merges_compress_and_round_trip(bpe: TextTokenizer) -> None:
    ids = bpe.encode(CORPUS)
    assert len(ids) < 0.8 * len(CORPUS.encode("utf-8"))  # 39 merges already save > 20%
    assert bpe.decode(ids) == CORPUS


def _naive_merges(text_words: list[bytes], num_merges: int) -> list[tuple[int, int]]:
    """Reference: recount every pair after each merge, same tie-break (max count, then smallest pair)."""
    words = [list(word) for word in text_words]
    merges = []
    for rank in range(num_merges):
        counts: Counter = Counter()
        for word in words:
            counts.update(zip(word, word[1:]))
        if not counts:
            break
        pair = min(counts, key=lambda p: (-counts[p], p))
        merges.append(pair)
        words = [merge_pair(word, pair, 256 + rank) for word in words]
    return merges


@settings(max_examples=30, deadline=None)
@given(st.lists(st.text(alphabet="abc ", min_size=1, max_size=12), min_size=1, max_size=15),
       st.integers(min_value=1, max_value=25))
def test_incremental_counts_equal_naive_recount(words: list[str], num_merges: int) -> None:
    encoded = [word.encode() for word in words]
    counts = Counter(tuple(word) for word in encoded)
    assert learn_merges(counts, num_merges, 256) == _naive_merges(encoded, num_merges)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text())
def test_round_trip_any_unicode(bpe: TextTokenizer, text: str) -> None:
    assert bpe.decode(bpe.encode(text)) == text


@pytest.mark.parametrize("text", ["", "\r\n", "\x00\x01\x7f", "🙂" * 5, "a\u200db", "\ud800 lone surrogate",
                                  EOS_TOKEN + "[MASK]", "  \n\n  \t"])
def test_round_trip_edge_cases(bpe: TextTokenizer, text: str) -> None:
    assert bpe.decode(bpe.encode(text)) == text


def test_special_tokens_encode_only_when_allowed(bpe: TextTokenizer) -> None:
    text = f"hello{EOS_TOKEN}world {MASK_TOKEN}"
    plain = bpe.encode(text)
    assert not set(plain) & bpe.special_ids
    assert bpe.decode(plain) == text
    all_allowed = bpe.encode(text, allowed_special="all")
    assert all_allowed.count(bpe.eos_id) == 1 and all_allowed.count(bpe.mask_id) == 1
    only_eos = bpe.encode(text, allowed_special={EOS_TOKEN})
    assert bpe.eos_id in only_eos and bpe.mask_id not in only_eos
    assert bpe.decode(all_allowed) == text
    with pytest.raises(TokenizerError, match="unknown special token"):
        bpe.encode(text, allowed_special={"<|fim|>"})
    with pytest.raises(TokenizerError, match="wrap a single token"):
        bpe.encode(text, allowed_special=EOS_TOKEN)


def test_special_strings_in_training_text_do_not_shape_merges() -> None:
    # Special strings act as document boundaries: the same as training on the documents separately.
    plain = TextTokenizer(vocab_size=300).train(["ab ab", "ab cd"])
    with_specials = TextTokenizer(vocab_size=300).train(f"ab ab{EOS_TOKEN * 50}ab cd")
    assert plain.merges == with_specials.merges


def test_training_is_deterministic_and_accepts_iterables() -> None:
    documents = CORPUS.split("\n")
    first = TextTokenizer(vocab_size=320).train(documents)
    second = TextTokenizer(vocab_size=320).train(iter(documents))
    assert first.merges == second.merges
    assert first.fingerprint() == second.fingerprint()


def test_training_stops_when_pairs_run_out() -> None:
    tokenizer = TextTokenizer(vocab_size=1000).train("ab")
    assert tokenizer.merges == [(97, 98)]
    assert tokenizer.eos_id == 999 and tokenizer.encode("ab") == [256]


def test_save_load_and_fingerprint(bpe: TextTokenizer, tmp_path) -> None:
    path = bpe.save(tmp_path / "tok.json")
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["kind"] == "bpe" and document["merges"][0] == list(bpe.merges[0])
    assert isinstance(document["merged_tokens_readable"][0], str)
    loaded = load_tokenizer(path)
    assert isinstance(loaded, TextTokenizer)
    assert loaded.merges == bpe.merges and loaded.fingerprint() == bpe.fingerprint()
    assert loaded.encode(CORPUS) == bpe.encode(CORPUS)
    other = TextTokenizer(vocab_size=301).train(CORPUS)
    assert other.fingerprint() != bpe.fingerprint()


def test_bad_input_errors(tmp_path) -> None:
    with pytest.raises(TokenizerError, match="at least 261"):
        TextTokenizer(vocab_size=260)
    with pytest.raises(TokenizerError, match="empty text"):
        TextTokenizer(vocab_size=300).train("")
    with pytest.raises(TokenizerError, match="empty text"):
        CharTokenizer().train([])
    with pytest.raises(NotTrainedError, match="not trained"):
        TextTokenizer(vocab_size=300).encode("x")
    with pytest.raises(TokenizerError, match="not in this tokenizer's vocabulary"):
        TextTokenizer(vocab_size=300).train("ab").decode([290])


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    (json.dumps({"model": {"type": "BPE"}, "added_tokens": []}), "Hugging Face"),
    (json.dumps({"format": "minipretrain-tokenizer", "format_version": 99, "kind": "bpe"}), "format_version"),
    (json.dumps({"format": "minipretrain-tokenizer", "format_version": 1, "kind": "sentencepiece"}), "unknown tokenizer kind"),
    (json.dumps({"format": "minipretrain-tokenizer", "format_version": 1, "kind": "bpe", "vocab_size": 300}), "missing or malformed"),
    (json.dumps({"format": "minipretrain-tokenizer", "format_version": 1, "kind": "bpe", "vocab_size": 300,
                 "pattern": "x", "special_tokens": {}, "merges": []}), "special_tokens"),
])
def test_corrupted_or_foreign_files(tmp_path, content: str, message: str) -> None:
    path = tmp_path / "tokenizer.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TokenizerFileError, match=message):
        load_tokenizer(path)


def test_load_with_wrong_class_and_missing_file(bpe: TextTokenizer, tmp_path) -> None:
    path = bpe.save(tmp_path / "bpe.json")
    with pytest.raises(TokenizerFileError, match="use load_tokenizer"):
        CharTokenizer.load(path)
    with pytest.raises(TokenizerFileError, match="no tokenizer file"):
        load_tokenizer(tmp_path / "missing.json")


# ----- char tokenizer ------------------------------------------------------------------------------
def test_char_ids_follow_nanogpt() -> None:
    text = "hello world\nHELLO!"
    tokenizer = CharTokenizer().train(text)
    chars = sorted(set(text))  # nanoGPT: chars = sorted(list(set(data))); stoi = {ch: i}
    assert tokenizer.encode(text) == [chars.index(c) for c in text]
    assert tokenizer.vocab_size == len(chars) + len(SPECIAL_TOKENS)
    assert tokenizer.pad_id == len(chars) and tokenizer.eos_id == len(chars) + 4
    assert tokenizer.decode(tokenizer.encode(text)) == text
    assert tokenizer.encode("o" + MASK_TOKEN, allowed_special="all") == [chars.index("o"), tokenizer.mask_id]


def test_char_unknown_character_and_save_load(tmp_path) -> None:
    tokenizer = CharTokenizer().train(["abc", "cd"])
    with pytest.raises(TokenizerError, match=r"\['z'\]"):
        tokenizer.encode("az")
    loaded = load_tokenizer(tokenizer.save(tmp_path / "char.json"))
    assert isinstance(loaded, CharTokenizer) and loaded.encode("dcba") == [3, 2, 1, 0]
    assert loaded.fingerprint() == tokenizer.fingerprint()


@pytest.mark.parametrize("tokenizer", [TextTokenizer(vocab_size=300), CharTokenizer(), WordPieceTokenizer(vocab_size=200)])
def test_all_tokenizers_share_the_interface(tokenizer: Tokenizer) -> None:
    assert isinstance(tokenizer, Tokenizer) and not tokenizer.is_trained
    tokenizer.train(CORPUS)
    assert tokenizer.is_trained
    special = tokenizer.special_ids
    assert isinstance(special, frozenset)
    assert {tokenizer.pad_id, tokenizer.cls_id, tokenizer.sep_id, tokenizer.mask_id, tokenizer.eos_id} <= special
    ids = tokenizer.encode("Speak, speak.")
    assert ids and all(0 <= i < tokenizer.vocab_size for i in ids)
    assert isinstance(tokenizer.decode(ids), str)
    assert len(tokenizer.fingerprint()) == 64


def test_a_subclass_without_its_own_kind_does_not_take_over_loading(tmp_path) -> None:
    class Instrumented(CharTokenizer):
        """A test double that inherits kind "char" (as tests/test_dataset.py's broken tokenizer does)."""

    path = CharTokenizer().train(["abc"]).save(tmp_path / "char.json")
    assert type(load_tokenizer(path)) is CharTokenizer and Instrumented.kind == "char"
