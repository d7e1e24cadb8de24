"""Readers (WikiText, classification sets) and the synthetic Markov corpus, on data the tests write."""
from __future__ import annotations

import numpy as np
import pytest

from minipretrain.data import (
    MarkovCorpus,
    parse_wikitext_header,
    read_agnews,
    read_brown_genres,
    read_classification,
    read_sst2,
    read_trec,
    read_wikitext,
)

WIKITEXT = (
    " \n = Alpha Article = \n \n Alpha is a letter @-@ like thing . \n \n = = History = = \n \n"
    " It was old . \n \n = = = Early days = = = \n \n Very old . \n"
    " = Beta = \n \n Beta follows . \n"
)


def test_wikitext_header_parsing() -> None:
    assert parse_wikitext_header(" = Robert Boulter = \n") == (1, "Robert Boulter")
    assert parse_wikitext_header(" = = Career = = \r\n") == (2, "Career")
    assert parse_wikitext_header(" = = = 2000 – 2005 = = = ") == (3, "2000 – 2005")
    assert parse_wikitext_header(" a = b = c \n") is None
    assert parse_wikitext_header(" = = Unbalanced = \n") is None


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_wikitext_articles_and_sections(tmp_path, newline: str) -> None:
    path = tmp_path / "wiki.test.tokens"
    path.write_bytes(WIKITEXT.replace("\n", newline).encode("utf-8"))
    articles = read_wikitext(path)
    assert [article.title for article in articles] == ["Alpha Article", "Beta"]
    assert articles[0].sections == ("History", "Early days")
    assert articles[0].text.startswith(" = Alpha Article = \n") and "Very old" in articles[0].text
    assert "".join(article.text for article in articles) == WIKITEXT[2:]  # everything after the leading blank line


def test_classification_readers(tmp_path) -> None:
    (tmp_path / "sst.tsv").write_text("sentence\tlabel\na touching film \t1\ncafé noir , dull \t0\n", encoding="utf-8")
    assert [(e.text, e.label) for e in read_sst2(tmp_path / "sst.tsv")] == [("a touching film", "1"), ("café noir , dull", "0")]
    (tmp_path / "ag.tsv").write_text("Stocks fall\tagain\tBusiness\nTeam wins\tSports\n", encoding="utf-8")
    assert [(e.text, e.label) for e in read_agnews(tmp_path / "ag.tsv")] == [("Stocks fall\tagain", "Business"),
                                                                            ("Team wins", "Sports")]
    (tmp_path / "trec.label").write_bytes(b"DESC:manner How did it start ?\nLOC:other Where is sister\xf0city ?\n")
    trec = read_trec(tmp_path / "trec.label")
    assert [e.label for e in trec] == ["DESC", "LOC"] and trec[1].text == "Where is sister\u00f0city ?"  # latin-1
    assert read_trec(tmp_path / "trec.label", fine=True)[0].label == "DESC:manner"
    (tmp_path / "brown.tsv").write_text("fileid\tcategory\tsentence\nca01\tnews\tThe jury said .\n", encoding="utf-8")
    assert [(e.text, e.label) for e in read_brown_genres(tmp_path / "brown.tsv")] == [("The jury said .", "news")]
    (tmp_path / "bad.tsv").write_text("no tab here\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.tsv:1"):
        read_agnews(tmp_path / "bad.tsv")


def test_read_classification_through_a_mirror(tmp_path, monkeypatch) -> None:
    # A mirror with a file whose checksum is not the registered one: it must be refused.
    (tmp_path / "mirror" / "trec").mkdir(parents=True)
    (tmp_path / "mirror" / "trec" / "TREC_10.label").write_bytes(b"NUM:date When ?\n")
    monkeypatch.setenv("MINIPRETRAIN_DATA_MIRROR", str(tmp_path / "mirror"))
    from minipretrain.data import ChecksumError  # noqa: PLC0415
    with pytest.raises(ChecksumError):
        read_classification("trec", "test", root=tmp_path / "cache")
    with pytest.raises(KeyError, match="no 'validation' split"):
        read_classification("trec", "validation", root=tmp_path / "cache")


# ----- synthetic corpus ----------------------------------------------------------------------------
def test_markov_entropy_rate_matches_empirical_estimates() -> None:
    source = MarkovCorpus(alphabet_size=5, order=2, concentration=0.7, seed=3)
    exact = source.entropy_rate()
    assert 0 < exact < np.log(5)
    symbols = source.sample_symbols(200, 1500, np.random.default_rng(0))
    log_loss = -source.log_likelihood(symbols)
    standard_error = log_loss.mean(axis=1).std() / np.sqrt(len(log_loss))
    assert abs(log_loss.mean() - exact) < 4 * standard_error + 1e-3
    # Plug-in estimate from counts alone (independent of the model's probabilities).
    contexts = symbols[:, :-2] * 5 + symbols[:, 1:-1]
    joint = np.bincount((contexts * 5 + symbols[:, 2:]).ravel(), minlength=125).reshape(25, 5).astype(float)
    conditional = joint / joint.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        plug_in = -np.nansum(joint / joint.sum() * np.log(conditional))
    assert abs(plug_in - exact) < 0.02


def test_markov_two_sided_entropy_matches_a_closed_form_for_order_one() -> None:
    # H(X_t | X_t-1, X_t+1) = H(X_t | X_t-1) + H(X_t+1 | X_t) - H(X_t+1 | X_t-1) = 2 h - H(two-step chain)
    source = MarkovCorpus(alphabet_size=6, order=1, concentration=0.3, seed=0)  # lesson 2's corpus
    two_step = source.transition @ source.transition
    two_step_entropy = source.stationary_distribution() @ -(two_step * np.log(two_step)).sum(axis=1)
    expected = 2 * source.entropy_rate() - two_step_entropy
    assert source.two_sided_entropy() == pytest.approx(expected, abs=1e-12)
    assert 0 < source.two_sided_entropy() < source.entropy_rate()


@pytest.mark.parametrize("order, alphabet", [(1, 4), (2, 3)])
def test_markov_two_sided_entropy_matches_an_empirical_plug_in_estimate(order: int, alphabet: int) -> None:
    source = MarkovCorpus(alphabet_size=alphabet, order=order, concentration=0.7, seed=5)
    symbols = source.sample_symbols(200, 2000, np.random.default_rng(0))
    windows = np.lib.stride_tricks.sliding_window_view(symbols, 2 * order + 1, axis=1).reshape(-1, 2 * order + 1)
    keys = windows @ (alphabet ** np.arange(2 * order, -1, -1))
    joint = np.bincount(keys, minlength=alphabet ** (2 * order + 1)).astype(float)
    joint = joint.reshape(alphabet ** order, alphabet, alphabet ** order) / joint.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        plug_in = -np.nansum(joint * np.log(joint / joint.sum(axis=1, keepdims=True)))
    assert abs(plug_in - source.two_sided_entropy()) < 0.01
    assert source.two_sided_entropy() < source.entropy_rate()
    with pytest.raises(ValueError, match="too many to enumerate"):
        MarkovCorpus(alphabet_size=26, order=3).two_sided_entropy()


def test_markov_concentration_controls_entropy_and_seed_fixes_everything() -> None:
    peaked = MarkovCorpus(alphabet_size=6, order=1, concentration=0.05, seed=0).entropy_rate()
    flat = MarkovCorpus(alphabet_size=6, order=1, concentration=100.0, seed=0).entropy_rate()
    assert peaked < flat < np.log(6)
    assert flat > 0.98 * np.log(6)
    first = MarkovCorpus(seed=7).documents(3, 50, np.random.default_rng(1))
    assert first == MarkovCorpus(seed=7).documents(3, 50, np.random.default_rng(1))
    assert first != MarkovCorpus(seed=8).documents(3, 50, np.random.default_rng(1))
    assert set("".join(first)) <= set("abcdefgh") and len(MarkovCorpus().text(300)) == 300


def test_markov_single_and_batched_sampling_agree_in_distribution() -> None:
    source = MarkovCorpus(alphabet_size=4, order=1, concentration=1.0, seed=2)
    single = np.bincount(source.sample_symbols(1, 40_000, np.random.default_rng(0)).ravel(), minlength=4) / 40_000
    stationary = source.stationary_distribution()
    assert np.allclose(single, stationary, atol=0.02)


def test_markov_bad_settings() -> None:
    with pytest.raises(ValueError, match="alphabet_size"):
        MarkovCorpus(alphabet_size=1)
    with pytest.raises(ValueError, match="concentration"):
        MarkovCorpus(concentration=0)
    with pytest.raises(ValueError, match="too many"):
        MarkovCorpus(alphabet_size=26, order=6)
