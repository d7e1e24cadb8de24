"""The divergence guard: a loss that stays far above its running level stops the run like a NaN does, and the
checkpoint on disk is the last one written before the spike."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from minipretrain.data import PretrainingDataset
from minipretrain.models import create_model
from minipretrain.objectives import CausalLanguageModeling
from minipretrain.tokenizers import CharTokenizer
from minipretrain.training import PreTrainer, TrainingDivergedError, load_checkpoint
from minipretrain.training.divergence import DivergenceGuard
from runs import SEQ_LEN, write_corpus


def trainer(tmp_path: Path, **options: object) -> PreTrainer:
    corpus = write_corpus(tmp_path / "corpus.txt")
    tokenizer = CharTokenizer()
    data = PretrainingDataset(corpus, tokenizer, SEQ_LEN, cache_dir=tmp_path / "tokens")
    model = create_model("gpt", tokenizer.vocab_size, n_layer=1, n_head=2, n_embd=16, block_size=SEQ_LEN)
    settings = dict(batch_size=4, learning_rate=1e-3, max_steps=30, warmup_steps=0, progress=False,
                    checkpoint_dir=tmp_path / "run", checkpoint_interval=2)
    settings.update(options)
    return PreTrainer(model=model, objective=CausalLanguageModeling(model, tokenizer), dataset=data, **settings)


def test_a_loss_spike_that_persists_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    run = trainer(tmp_path)
    run.train(until_step=6)
    good = (tmp_path / "run" / "checkpoint.npz").read_bytes()
    assert load_checkpoint(tmp_path / "run" / "checkpoint.npz")["step"] == 6
    run.model.transformer.wte.weight.data *= 1e4  # a blow-up: the loss jumps by orders of magnitude, finite
    with pytest.raises(TrainingDivergedError,
                       match=r"loss became [\d.e+]+ at step 1[01].*far above its running level.*checkpoint.npz"
                             r".*Lower the learning rate"):
        run.train()
    # The steps inside the spike (7, 8, 9, 10) wrote no checkpoint: step 6's is the one kept.
    assert (tmp_path / "run" / "checkpoint.npz").read_bytes() == good


def test_an_ordinary_run_is_never_stopped(tmp_path: Path) -> None:
    run = trainer(tmp_path, learning_rate=3e-2, max_steps=40)  # a fast, noisy run
    result = run.train()
    assert result.steps == 40 and np.isfinite(result.final_loss)


def test_the_guard_counts_consecutive_steps_and_forgets_a_short_spike() -> None:
    guard = DivergenceGuard(factor=3.0, steps=3)
    for loss in (4.0, 3.5, 3.0, 2.8):
        assert guard.observe(loss) is None
    assert guard.observe(50.0) is None and guard.suspicious
    assert guard.observe(2.7) is None and not guard.suspicious  # one bad step is noise
    assert guard.observe(50.0) is None and guard.observe(60.0) is None
    reason = guard.observe(70.0)
    assert reason is not None and "3 steps" in reason
    assert DivergenceGuard(factor=None, steps=3).observe(1e9) is None  # switched off


def test_the_guard_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="divergence_factor"):
        trainer(tmp_path, divergence_factor=0.5)
    with pytest.raises(ValueError, match="divergence_steps"):
        trainer(tmp_path, divergence_steps=0)
