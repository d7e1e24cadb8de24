"""The linear probe: feature extraction from frozen GPT/BERT models and the logistic-regression fit."""
from __future__ import annotations

import numpy as np
import pytest

from minipretrain.evaluation.probe import encode_texts, extract_features, probe_model, train_probe
from minipretrain.models import BERT, GPT, BERTConfig, GPTConfig
from minipretrain.tokenizers import CharTokenizer


def _blobs(n: int, width: int, classes: int, seed: int, spread: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, spread, size=(classes, width))
    labels = rng.integers(0, classes, size=n)
    return centers[labels] + rng.normal(size=(n, width)), labels


def test_probe_separates_separable_classes() -> None:
    features, labels = _blobs(600, 12, 3, seed=0, spread=4.0)
    result = train_probe(features[:400], labels[:400], features[400:], labels[400:], seed=0)
    assert result.test_accuracy >= 0.98
    assert result.train_accuracy >= 0.98
    assert result.num_classes == 3 and result.num_train == 400 and result.num_test == 200


def test_probe_on_random_labels_stays_near_chance() -> None:
    rng = np.random.default_rng(1)
    features = rng.normal(size=(2000, 16))
    labels = rng.integers(0, 2, size=2000)
    result = train_probe(features[:1000], labels[:1000], features[1000:], labels[1000:], seed=0)
    # 1000 test examples: the standard error of a chance accuracy is ~0.016.
    assert abs(result.test_accuracy - 0.5) < 0.06
    assert abs(result.chance_accuracy - 0.5) < 0.06


def test_probe_is_seeded_and_accepts_string_labels() -> None:
    features, labels = _blobs(300, 8, 2, seed=2, spread=1.0)
    names = np.array(["neg", "pos"])[labels].tolist()
    first = train_probe(features[:200], names[:200], features[200:], names[200:], seed=5, steps=50)
    second = train_probe(features[:200], names[:200], features[200:], names[200:], seed=5, steps=50)
    assert first.test_accuracy == second.test_accuracy and first.final_loss == second.final_loss
    assert first.classes == ["neg", "pos"]


def test_unseen_test_label_counts_as_an_error() -> None:
    features, labels = _blobs(200, 6, 2, seed=3, spread=5.0)
    test_labels = [int(x) for x in labels[100:]]
    test_labels[0] = 7  # a class the probe never saw
    result = train_probe(features[:100], labels[:100].tolist(), features[100:], test_labels, seed=0)
    assert result.test_accuracy <= 0.99


def test_probe_rejects_mismatched_inputs() -> None:
    with pytest.raises(ValueError, match="one label per feature row"):
        train_probe(np.zeros((3, 2)), [0, 1], np.zeros((2, 2)), [0, 1])
    with pytest.raises(ValueError, match="at least two classes"):
        train_probe(np.zeros((3, 2)), [0, 0, 0], np.zeros((2, 2)), [0, 1])


@pytest.fixture(scope="module")
def tokenizer() -> CharTokenizer:
    return CharTokenizer().train("abcdefgh ")


@pytest.fixture(scope="module", params=["gpt", "bert"])
def model(request: pytest.FixtureRequest, tokenizer: CharTokenizer):
    if request.param == "gpt":
        return GPT(GPTConfig(vocab_size=tokenizer.vocab_size, n_layer=1, n_head=2, n_embd=16, block_size=24, seed=0))
    return BERT(BERTConfig(vocab_size=tokenizer.vocab_size, n_layer=1, n_head=2, n_embd=16,
                           max_position_embeddings=24, dropout=0.0, seed=0))


def test_encode_texts_marks_content_for_pooling(tokenizer: CharTokenizer) -> None:
    ids, attention, pool = encode_texts(tokenizer, ["abc", "abcdefgh"], max_len=6, kind="bert")
    assert ids[0, 0] == tokenizer.cls_id and ids[0, 4] == tokenizer.sep_id
    assert pool[0].tolist() == [False, True, True, True, False, False]
    assert attention[0].tolist() == [True] * 5 + [False]
    assert pool[1].sum() == 4  # cut to max_len - 2 content tokens
    gpt_ids, _, gpt_pool = encode_texts(tokenizer, ["abc"], max_len=6, kind="gpt")
    assert gpt_ids[0, :3].tolist() == tokenizer.encode("abc") and gpt_pool[0].sum() == 3


def test_features_do_not_depend_on_batch_padding(model, tokenizer: CharTokenizer) -> None:
    alone = extract_features(model, tokenizer, ["abc"])
    padded = extract_features(model, tokenizer, ["abc", "hgfedcbahgfedcba"])
    assert alone.shape == (1, 16) and padded.shape == (2, 16)
    np.testing.assert_allclose(alone[0], padded[0], rtol=1e-4, atol=1e-5)


def test_feature_extraction_leaves_the_model_unchanged(model, tokenizer: CharTokenizer) -> None:
    before = {name: p.data.copy() for name, p in model.named_parameters()}
    model.train()
    extract_features(model, tokenizer, ["abc", "de"], batch_size=1)
    assert model.training
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(before[name], p.data)
        assert p.grad is None


def test_probe_model_end_to_end(model, tokenizer: CharTokenizer) -> None:
    rng = np.random.default_rng(0)
    # Class 0 uses only a-d, class 1 only e-h: even a random-init model's mean features separate them.
    texts, labels = [], []
    for i in range(80):
        label = i % 2
        alphabet = "abcd" if label == 0 else "efgh"
        texts.append("".join(rng.choice(list(alphabet), size=10)))
        labels.append(label)
    result = probe_model(model, tokenizer, texts[:60], labels[:60], texts[60:], labels[60:], seed=0)
    assert result.test_accuracy >= 0.9
