"""WordPiece: BERT's basic tokenisation, greedy longest match, vocab.txt, training, and (optionally) HF parity."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minipretrain.tokenizers import MASK_TOKEN, TokenizerError, TokenizerFileError, WordPieceTokenizer, basic_tokenize, load_tokenizer

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "un", "##aff", "##able", "##ed", "run", "##ning",
         "cafe", "!", ",", ".", "'", "s", "hello", "world", "日", "本", "a", "##b", "##c", "b", "c", "$", "1", "##2"]

TRICKY_TEXTS = [
    "unaffable running", "Hello, World!", "Café   CAFÉ\tcafe\n", "the unaffed the's", "日本 hello",
    "x\x00y\ufffd z\u200b", "abc abcabc a2 12", "$1,2.", "", "   ", "a" * 120, "Ünaffable’s",
]


@pytest.fixture(scope="module")
def vocab_file(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("bert") / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return path


def test_basic_tokenize_like_bert() -> None:
    assert basic_tokenize("Hello, World!") == ["hello", ",", "world", "!"]
    assert basic_tokenize("Café naïve") == ["cafe", "naive"]
    assert basic_tokenize("日本語 ok") == ["日", "本", "語", "ok"]
    assert basic_tokenize("a\x00b\tc\u3000d") == ["ab", "c", "d"]
    assert basic_tokenize("Keep Case", lowercase=False) == ["Keep", "Case"]
    assert basic_tokenize("$5^`") == ["$", "5", "^", "`"]  # ASCII symbols count as punctuation


def test_vocab_file_greedy_longest_match(vocab_file) -> None:
    tokenizer = WordPieceTokenizer.from_vocab_file(vocab_file)
    assert tokenizer.vocab_size == len(VOCAB)
    assert tokenizer.tokenize("unaffable running") == ["un", "##aff", "##able", "run", "##ning"]
    assert tokenizer.tokenize("abc xyz") == ["a", "##b", "##c", "[UNK]"]
    assert tokenizer.tokenize("a" * 101) == ["[UNK]"]  # longer than max_input_chars_per_word
    assert tokenizer.decode(tokenizer.encode("unaffable running")) == "unaffable running"
    assert (tokenizer.pad_id, tokenizer.unk_id, tokenizer.cls_id, tokenizer.sep_id, tokenizer.mask_id) == (0, 1, 2, 3, 4)
    assert tokenizer.eos_id == tokenizer.sep_id


def test_special_tokens_only_when_allowed(vocab_file) -> None:
    tokenizer = WordPieceTokenizer.from_vocab_file(vocab_file)
    assert tokenizer.encode(f"the {MASK_TOKEN}") == [5, 1, 1, 1]  # "[", "mask", "]" are not in the vocabulary
    assert tokenizer.encode(f"the {MASK_TOKEN}", allowed_special="all") == [5, tokenizer.mask_id]
    with pytest.raises(TokenizerError, match="unknown special token"):
        tokenizer.encode("x", allowed_special={"<|endoftext|>"})


def test_vocab_file_errors(tmp_path) -> None:
    path = tmp_path / "vocab.txt"
    path.write_text("[PAD]\n[UNK]\nhello\n", encoding="utf-8")
    with pytest.raises(TokenizerFileError, match=r"\[CLS\]"):
        WordPieceTokenizer.from_vocab_file(path)
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(TokenizerFileError, match="UTF-8"):
        WordPieceTokenizer.from_vocab_file(path)


def test_train_save_load_round_trip(tmp_path) -> None:
    corpus = ["the running dog runs", "unaffable people are running", "The dog's bone, the cat's toy."] * 30
    tokenizer = WordPieceTokenizer(vocab_size=80).train(corpus)
    assert tokenizer.vocab_size <= 80
    assert tokenizer.vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert len(set(tokenizer.vocab)) == tokenizer.vocab_size
    assert any(token.startswith("##") for token in tokenizer.vocab)
    ids = tokenizer.encode("The running dog")
    assert tokenizer.unk_id not in ids
    assert tokenizer.decode(ids) == "the running dog"
    loaded = load_tokenizer(tokenizer.save(tmp_path / "wp.json"))
    assert loaded.encode("unaffable dogs") == tokenizer.encode("unaffable dogs")
    assert loaded.fingerprint() == tokenizer.fingerprint()
    reread = WordPieceTokenizer.from_vocab_file(tokenizer.save_vocab_file(tmp_path / "vocab.txt"))
    assert reread.encode("people running") == tokenizer.encode("people running")


def test_train_errors() -> None:
    with pytest.raises(TokenizerError, match="too small"):
        WordPieceTokenizer(vocab_size=5)
    with pytest.raises(TokenizerError, match="use at least"):
        WordPieceTokenizer(vocab_size=8).train("abcdefgh")
    with pytest.raises(TokenizerError, match="empty text"):
        WordPieceTokenizer(vocab_size=100).train(" \n ")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(list("abcun ,.!'") + ["aff", "able", "ing", "日"]), max_size=20).map("".join))
def test_words_from_the_vocabulary_never_become_unk(text: str) -> None:
    # every symbol appears both word-initially and as a ## continuation in the training text
    tokenizer = WordPieceTokenizer(vocab_size=100).train("a b c u n i abcun ,.!' affable running 日")
    ids = tokenizer.encode(text)
    assert tokenizer.unk_id not in ids
    assert tokenizer.decode(ids).replace(" ", "") == "".join(basic_tokenize(text))


def _reference_tokenizers(vocab_file):
    """Hugging Face tokenizers built on our vocab.txt; empty when neither library is installed."""
    references = []
    try:
        from transformers import BertTokenizer, BertTokenizerFast  # noqa: PLC0415
        references += [BertTokenizer(str(vocab_file)), BertTokenizerFast(str(vocab_file))]
    except ImportError:
        pass
    try:
        from tokenizers import BertWordPieceTokenizer  # noqa: PLC0415
        fast = BertWordPieceTokenizer(str(vocab_file), lowercase=True)
        references.append(fast)
    except ImportError:
        pass
    return references


@pytest.mark.reference
def test_matches_hugging_face_bert_tokenizer(vocab_file) -> None:
    references = _reference_tokenizers(vocab_file)
    if not references:
        pytest.skip("neither transformers nor tokenizers is installed")
    ours = WordPieceTokenizer.from_vocab_file(vocab_file)
    for reference in references:
        for text in TRICKY_TEXTS:
            if hasattr(reference, "encode") and hasattr(reference, "mask_token"):  # transformers
                expected = reference.encode(text, add_special_tokens=False)
            else:  # tokenizers.BertWordPieceTokenizer
                expected = reference.encode(text, add_special_tokens=False).ids
            assert ours.encode(text, allowed_special="all") == expected, (type(reference).__name__, text)
