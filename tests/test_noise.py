"""Noise injection: rates, determinism, and cutting a noised corpus to the clean corpus's size."""

from __future__ import annotations

import numpy as np
import pytest

from minipretrain.data.quality import corpus_size, inject_noise, match_size, truncate_to_budget
from minipretrain.data.quality.noise import BOILERPLATE_LINES, add_markup, add_random_characters

CLEAN = [f"Document {i} has a first line.\nAnd a second line about topic {i}." for i in range(200)]


@pytest.mark.parametrize("kind", ["boilerplate", "duplicates", "random_chars", "markup", "mix"])
@pytest.mark.parametrize("rate", [0.0, 0.25, 1.0])
def test_rate_is_the_fraction_of_documents_noised(kind, rate):
    noised = inject_noise(CLEAN, kind, rate, seed=0, char_rate=0.5, markup_rate=0.5)
    n_noised = round(rate * len(CLEAN))
    assert sum(k != "clean" for k in noised.kinds) == n_noised
    assert len(noised.documents) == len(CLEAN) + sum(k == "duplicates" for k in noised.kinds)
    for text, kind_of_doc, source in zip(noised.documents, noised.kinds, noised.source_index):
        if kind_of_doc in ("clean", "duplicates"):
            assert text == CLEAN[source]
        else:
            assert text != CLEAN[source]  # intensities of 0.5 change every chosen document here
    if kind != "mix":
        assert {k for k in noised.kinds if k != "clean"} <= {kind}


def test_mix_uses_every_kind_and_is_deterministic():
    first = inject_noise(CLEAN, "mix", 0.5, seed=3)
    second = inject_noise(CLEAN, "mix", 0.5, seed=3)
    assert first == second
    assert set(first.kinds) == {"clean", "boilerplate", "duplicates", "random_chars", "markup"}
    assert inject_noise(CLEAN, "mix", 0.5, seed=4).documents != first.documents


def test_boilerplate_lines_are_added():
    noised = inject_noise(CLEAN, "boilerplate", 0.1, seed=1, boilerplate_lines=3)
    for text, kind, source in zip(noised.documents, noised.kinds, noised.source_index):
        extra = [line for line in text.split("\n") if line not in CLEAN[source].split("\n")]
        assert len(extra) == (3 if kind == "boilerplate" else 0)
        assert all(line in BOILERPLATE_LINES for line in extra)


def test_random_character_rate_and_whitespace_preserved():
    text = "abcdefghij klmnopqrst\n" * 500
    rng = np.random.default_rng(0)
    noised = add_random_characters(text, rng, char_rate=0.2)
    assert len(noised) == len(text) and noised.split() != text.split()
    assert [len(w) for w in noised.split()] == [len(w) for w in text.split()]  # whitespace untouched
    changed = np.mean([a != b for a, b in zip(text, noised) if not a.isspace()])
    # 10,000 characters at p = 0.2: standard error 0.004; a replacement may redraw the same letter (1/94).
    assert abs(changed - 0.2 * (1 - 1 / 94)) < 4 * 0.004


def test_markup_rate_is_fraction_of_words():
    words = [f"w{i}" for i in range(4000)]
    noised = add_markup(" ".join(words), np.random.default_rng(1), markup_rate=0.25)
    plain = set(noised.split())
    fraction_wrapped = 1 - sum(w in plain for w in words) / len(words)
    assert "[[" in noised and "<a href=" in noised and "</ref>" in noised
    # Binomial(4000, 0.25): standard error 0.0068.
    assert abs(fraction_wrapped - 0.25) < 4 * 0.0068


@pytest.mark.parametrize("unit", ["chars", "words"])
def test_match_size_gives_equal_token_count(unit):
    noised = inject_noise(CLEAN, "mix", 0.5, seed=2)
    assert corpus_size(noised.documents, unit) > corpus_size(CLEAN, unit)
    balanced = match_size(CLEAN, noised.documents, unit)
    assert corpus_size(balanced, unit) == corpus_size(CLEAN, unit)
    assert balanced[:-1] == noised.documents[: len(balanced) - 1]  # whole documents, then one cut
    assert noised.documents[len(balanced) - 1].startswith(balanced[-1])


def test_truncate_keeps_original_spacing_and_rejects_too_small_corpus():
    assert truncate_to_budget(["a  b\n c d"], 3, "words") == ["a  b\n c"]
    assert truncate_to_budget(["abc", "defg"], 5, "chars") == ["abc", "de"]
    assert truncate_to_budget(["abc", "defg"], 3, "chars") == ["abc"]
    with pytest.raises(ValueError, match="fewer"):
        truncate_to_budget(["a b"], 3)
    with pytest.raises(ValueError):
        corpus_size(["a"], "tokens")  # type: ignore[arg-type]


@pytest.mark.parametrize("kind, rate", [("sparkles", 0.1), ("markup", 1.5), ("markup", -0.1)])
def test_invalid_arguments(kind, rate):
    with pytest.raises(ValueError):
        inject_noise(CLEAN, kind, rate, seed=0)  # type: ignore[arg-type]
