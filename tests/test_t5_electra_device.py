"""T5 (span corruption) and ELECTRA (replaced-token detection) on the "cuda" device: a GPU, or the strict fake
device of ``--fake-gpu`` where one exists (skipped otherwise). A few PreTrainer steps there must give the CPU
run's parameters (float32 round-off of a reordered sum allowed: rtol 1e-5), keep every parameter on the device,
and the printed examples (T5's greedy generation, ELECTRA's flagged tokens) must run there too.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import NEEDS_CUDA, host
from minipretrain.backend import device_of
from minipretrain.data import MarkovCorpus, PretrainingDataset
from minipretrain.models import create_model
from minipretrain.objectives import data_layout, make_objective, tokenizer_for
from minipretrain.tokenizers import CharTokenizer
from minipretrain.training import PreTrainer

SEQ_LEN = 16
OBJECTIVE = {"t5": "span_corruption", "electra": "rtd"}
pytestmark = NEEDS_CUDA


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "markov.txt"
    markov = MarkovCorpus(alphabet_size=6, order=1, concentration=0.3, seed=3)
    path.write_text(markov.text(20_000, rng=np.random.default_rng(0)))
    return path


def trainer(kind: str, corpus_file: Path, cache: Path, device: str) -> PreTrainer:
    name = OBJECTIVE[kind]
    tokenizer = tokenizer_for(name, CharTokenizer(), **({"num_sentinels": 10} if kind == "t5" else {}))
    train = PretrainingDataset(corpus_file, tokenizer, SEQ_LEN, objective=data_layout(name), split="train",
                               cache_dir=cache)
    model = create_model(kind, tokenizer.vocab_size, n_layer=1, n_head=2, n_embd=32, block_size=SEQ_LEN + 2,
                         dropout=0.0, seed=0)  # dropout masks come from the device's own generator
    return PreTrainer(model=model, objective=make_objective(name, model, tokenizer), dataset=train, batch_size=4,
                      learning_rate=3e-3, max_steps=3, warmup_steps=1, eval_interval=0, log_interval=1,
                      progress=False, seed=5, grad_clip=1.0, device=device)


@pytest.mark.parametrize("kind", ["t5", "electra"])
def test_steps_on_the_device_equal_the_cpu_run(kind, corpus_file, tmp_path):
    on_cpu = trainer(kind, corpus_file, tmp_path / "cache", "cpu")
    on_cpu.train()
    on_gpu = trainer(kind, corpus_file, tmp_path / "cache", "cuda")
    on_gpu.train()
    np.testing.assert_allclose([r["loss"] for r in on_gpu.history], [r["loss"] for r in on_cpu.history], rtol=1e-5)
    for (name, p), (_, q) in zip(on_gpu.model.named_parameters(), on_cpu.model.named_parameters()):
        assert device_of(p.data) == "cuda", name
        np.testing.assert_allclose(host(p), host(q), rtol=1e-5, atol=1e-7, err_msg=name)
    batch = on_gpu.dataset.get_batch(2, np.random.default_rng(0))
    shown = on_gpu.objective.examples(on_gpu.model, batch, count=2)
    assert shown == on_cpu.objective.examples(on_cpu.model, batch, count=2)
