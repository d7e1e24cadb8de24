"""A training step waits for the GPU at most three times, however deep the model.

Each host synchronisation (``float(x)``, ``.item()``, a boolean mask, ``.get()``...) stalls the GPU pipeline
until everything queued so far has run. The fake device counts them per call site; a step may read the loss,
the gradient norm and the accuracy once each, and nothing per layer.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import NEEDS_CUDA
from minipretrain.backend import fake_cupy_enabled
from minipretrain.data import MarkovCorpus, PretrainingDataset
from minipretrain.models import BERT, GPT, BERTConfig, GPTConfig
from minipretrain.objectives import CausalLanguageModeling, MaskedLanguageModeling
from minipretrain.tokenizers import CharTokenizer
from minipretrain.training import PreTrainer

pytestmark = [*NEEDS_CUDA, pytest.mark.skipif(not fake_cupy_enabled(), reason="counts syncs on the fake device")]
BUDGET = 3
SEQ_LEN = 16


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "markov.txt"
    path.write_text(MarkovCorpus(alphabet_size=6, order=1, concentration=0.3, seed=3)
                    .text(20_000, rng=np.random.default_rng(0)))
    return path


def syncs_per_step(kind: str, n_layer: int, corpus_file: Path, cache: Path, accumulation: int = 1) -> object:
    from minipretrain.testing.fake_cupy import count_syncs  # noqa: PLC0415

    tokenizer = CharTokenizer()
    train = PretrainingDataset(corpus_file, tokenizer, SEQ_LEN, objective="clm" if kind == "gpt" else "mlm",
                               split="train", cache_dir=cache)
    vocab = train.tokenizer.vocab_size
    if kind == "gpt":
        model = GPT(GPTConfig(vocab_size=vocab, n_layer=n_layer, n_head=2, n_embd=16, block_size=SEQ_LEN,
                              dropout=0.1))
        objective = CausalLanguageModeling(model, train.tokenizer)
    else:
        model = BERT(BERTConfig(vocab_size=vocab, n_layer=n_layer, n_head=2, n_embd=16,
                                max_position_embeddings=SEQ_LEN, dropout=0.1))
        objective = MaskedLanguageModeling(model, train.tokenizer, seed=1)
    run = PreTrainer(model=model, objective=objective, dataset=train, batch_size=4, max_steps=10, progress=False,
                     device="cuda", grad_clip=1.0, gradient_accumulation_steps=accumulation)
    run.train_step()  # the first step also measures the matmul peak for MFU: not a step's cost
    with count_syncs() as syncs:
        run.train_step()
    return syncs


@pytest.mark.parametrize("kind", ["gpt", "bert"])
def test_a_training_step_syncs_at_most_three_times_whatever_the_depth(kind: str, corpus_file: Path,
                                                                     tmp_path: Path) -> None:
    shallow = syncs_per_step(kind, 1, corpus_file, tmp_path)
    deep = syncs_per_step(kind, 3, corpus_file, tmp_path)
    assert shallow.total <= BUDGET, shallow
    assert deep.total == shallow.total, f"syncs grow with depth: {shallow} vs {deep}"


def test_gradient_accumulation_reads_each_micro_batch_loss_without_extra_syncs(corpus_file: Path,
                                                                             tmp_path: Path) -> None:
    syncs = syncs_per_step("gpt", 2, corpus_file, tmp_path, accumulation=3)
    assert syncs.total <= BUDGET, syncs
