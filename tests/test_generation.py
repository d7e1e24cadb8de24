"""Sampling with and without the KV cache, cropping, and fill-mask."""
from __future__ import annotations

import numpy as np
import pytest

import minipretrain as mp
from minipretrain.evaluation import fill_mask, generate
from minipretrain.models import BERT, GPT, BERTConfig, GPTConfig

VOCAB = 19


def tiny_gpt(dtype="float64", block_size=16) -> GPT:
    return GPT(GPTConfig(vocab_size=VOCAB, n_layer=2, n_head=2, n_embd=16, block_size=block_size, dtype=dtype,
                         seed=1, dropout=0.2))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("top_k", [None, 4])
def test_cache_gives_the_same_tokens(dtype, top_k):
    """Past block_size too (16): 5 + 30 tokens exercises filling, decoding and the cropped fallback."""
    model = tiny_gpt(dtype)
    prompt = np.random.default_rng(0).integers(0, VOCAB, size=(3, 5))
    cached = generate(model, prompt, 30, temperature=1.0, top_k=top_k, seed=7, use_cache=True)
    uncached = generate(model, prompt, 30, temperature=1.0, top_k=top_k, seed=7, use_cache=False)
    assert cached.shape == (3, 35)
    np.testing.assert_array_equal(cached, uncached)
    np.testing.assert_array_equal(cached[:, :5], prompt)


def test_cached_logits_match_full_forward():
    model = tiny_gpt()
    model.eval()
    tokens = np.random.default_rng(1).integers(0, VOCAB, size=(2, 9))
    with mp.no_grad():
        full = model(tokens).numpy()
        cache = model.new_cache(2)
        steps = [model.forward_cached(tokens[:, :4], cache).numpy()]
        steps += [model.forward_cached(tokens[:, t:t + 1], cache).numpy() for t in range(4, 9)]
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, rtol=0, atol=1e-12)


def test_seed_and_temperature():
    model = tiny_gpt()
    prompt = np.array([1, 2, 3])
    first = generate(model, prompt, 12, seed=3)
    assert first.shape == (15,)
    np.testing.assert_array_equal(generate(model, prompt, 12, seed=3), first)
    assert not np.array_equal(generate(model, prompt, 12, seed=4), first)
    greedy = generate(model, prompt, 12, temperature=0.0)
    np.testing.assert_array_equal(generate(model, prompt, 12, top_k=1, seed=9), greedy)
    model.eval()
    with mp.no_grad():
        assert greedy[3] == model(prompt[None]).numpy()[0, -1].argmax()


def test_long_prompts_are_cropped_to_block_size():
    model = tiny_gpt(block_size=8)
    prompt = np.random.default_rng(2).integers(0, VOCAB, size=20)
    out = generate(model, prompt, 5, seed=1)
    np.testing.assert_array_equal(out[20:], generate(model, prompt[-8:], 5, seed=1)[8:])


def test_generate_restores_training_mode_and_checks_arguments():
    model = tiny_gpt()
    generate(model, np.array([1]), 2)
    assert model.training
    with pytest.raises(ValueError, match="temperature"):
        generate(model, np.array([1]), 2, temperature=-1)
    with pytest.raises(ValueError, match="shape"):
        generate(model, np.zeros((1, 0), dtype=int), 2)


# ------------------------------------------------------------------------------------------ fill-mask
class StubTokenizer:
    """Words of a fixed list; '[MASK]' becomes the mask id only when allowed_special asks for it."""

    words = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "dog"]
    pad_id, cls_id, sep_id, mask_id = 0, 1, 2, 3
    vocab_size = len(words)

    def encode(self, text, allowed_special="none"):
        out = []
        for word in text.lower().split():
            if word == "[mask]":
                assert "[MASK]" in allowed_special, "fill_mask must allow [MASK] as a special token"
                out.append(self.mask_id)
            else:
                out.append(self.words.index(word))
        return out

    def decode(self, ids):
        return " ".join(self.words[i] for i in ids)


def tiny_bert() -> BERT:
    return BERT(BERTConfig(vocab_size=StubTokenizer.vocab_size, n_layer=1, n_head=2, n_embd=8,
                           max_position_embeddings=12, dtype="float64", seed=2))


def test_fill_mask_ranks_the_models_predictions():
    model, tokenizer = tiny_bert(), StubTokenizer()
    results = fill_mask(model, tokenizer, "The cat [MASK] on the mat", top_k=3)
    assert model.training  # fill_mask switched to eval and back
    model.eval()
    with mp.no_grad():
        logits = model(np.array([[1, 4, 5, 3, 7, 4, 8, 2]])).numpy()[0, 3]
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    best = np.argsort(-probs)[:3]
    assert [r["token"] for r in results] == best.tolist()
    np.testing.assert_allclose([r["score"] for r in results], probs[best], rtol=1e-12)
    assert results[0]["sequence"] == f"the cat {tokenizer.words[best[0]]} on the mat"
    assert results[0]["token_str"] == tokenizer.words[best[0]]


def test_fill_mask_with_several_masks_and_without():
    model, tokenizer = tiny_bert(), StubTokenizer()
    results = fill_mask(model, tokenizer, "[MASK] cat sat on the [MASK]", top_k=2)
    assert len(results) == 2 and all(len(r) == 2 for r in results)
    with pytest.raises(ValueError, match="no \\[MASK\\]"):
        fill_mask(model, tokenizer, "the cat sat", top_k=2)
