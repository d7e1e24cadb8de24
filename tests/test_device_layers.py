"""Every layer above the ops on the ``device`` fixture: models, trainer, generation, fill-mask, probes, interop,
optimizers and ``MINIPRETRAIN_DEVICE``. On "cuda" they run on a GPU, or on the strict fake device
(``--fake-gpu``; ``make test`` does), which refuses every implicit host/device crossing as CuPy does.

Device results are compared with the CPU run of the same code. On the fake device the arithmetic is NumPy's,
so the two agree exactly; a real GPU sums in another order, so comparisons allow float32 round-off
(rtol 1e-5 over a few steps of a tiny model) and the tokens a sampler picks are compared only greedily.
"""
from __future__ import annotations

import os
import signal
import warnings
from pathlib import Path

import numpy as np
import pytest

import minipretrain as mp
from conftest import NEEDS_CUDA, host, on_device
from minipretrain.backend import device_of
from minipretrain.data import MarkovCorpus, PretrainingDataset
from minipretrain.evaluation import fill_mask, generate
from minipretrain.evaluation.probe import extract_features, probe_model
from minipretrain.interop.huggingface import load_hf_checkpoint, save_hf_checkpoint
from minipretrain.models import BERT, GPT, BERTConfig, GPTConfig
from minipretrain.nn.parameter import Parameter
from minipretrain.objectives import CausalLanguageModeling, MaskedLanguageModeling
from minipretrain.optim import SGD, AdamW
from minipretrain.tokenizers import CharTokenizer
from minipretrain.training import PreTrainer, load_checkpoint

SEQ_LEN = 16
CUDA_ONLY = pytest.mark.parametrize("device", [pytest.param("cuda", marks=NEEDS_CUDA)])
RTOL = 1e-5  # float32 round-off of a reordered sum, over a few steps of a tiny model


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "markov.txt"
    markov = MarkovCorpus(alphabet_size=6, order=1, concentration=0.3, seed=3)
    path.write_text(markov.text(20_000, rng=np.random.default_rng(0)))
    return path


def splits(corpus_file: Path, cache: Path, objective: str) -> tuple[PretrainingDataset, PretrainingDataset]:
    tokenizer = CharTokenizer()
    return tuple(PretrainingDataset(corpus_file, tokenizer, SEQ_LEN, objective=objective, split=split,
                                    cache_dir=cache) for split in ("train", "validation"))  # type: ignore[return-value]


def tiny(kind: str, vocab_size: int, dropout: float = 0.0, n_layer: int = 1, seed: int = 0) -> GPT | BERT:
    if kind == "gpt":
        return GPT(GPTConfig(vocab_size=vocab_size, n_layer=n_layer, n_head=2, n_embd=32, block_size=SEQ_LEN,
                             dropout=dropout, seed=seed))
    return BERT(BERTConfig(vocab_size=vocab_size, n_layer=n_layer, n_head=2, n_embd=32,
                           max_position_embeddings=SEQ_LEN, dropout=dropout, seed=seed))


def trainer(kind: str, corpus_file: Path, cache: Path, device: str | None, dropout: float = 0.0,
            **options: object) -> PreTrainer:
    train, val = splits(corpus_file, cache, "clm" if kind == "gpt" else "mlm")
    model = tiny(kind, train.tokenizer.vocab_size, dropout)
    objective = (CausalLanguageModeling(model, train.tokenizer) if kind == "gpt"
                 else MaskedLanguageModeling(model, train.tokenizer, seed=1))
    settings = dict(batch_size=4, learning_rate=3e-3, max_steps=6, warmup_steps=1, eval_interval=0,
                    log_interval=1, progress=False, seed=5, grad_clip=1.0)
    settings.update(options)
    return PreTrainer(model=model, objective=objective, dataset=train, eval_dataset=val, device=device,
                      **settings)


def assert_same_parameters(a: mp.nn.Module, b: mp.nn.Module, rtol: float = RTOL) -> None:
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_allclose(host(p), host(q), rtol=rtol, atol=1e-7, err_msg=name)


# ------------------------------------------------------------------ models
@pytest.mark.parametrize("kind", ["gpt", "bert"])
def test_model_forward_and_backward_stay_on_the_device(kind: str, device: str) -> None:
    model = tiny(kind, 11, dropout=0.1).to(device)
    ids = np.random.default_rng(0).integers(0, 11, size=(2, 8))
    for given in (ids, on_device(ids, device)):  # host ids are moved by the model; device ids used as they are
        logits = model(given)
        assert logits.device == device and logits.shape == (2, 8, 11)
        (logits * logits).sum().backward()
        for name, p in model.named_parameters():
            assert p.grad is not None and device_of(p.grad) == device, name
        model.zero_grad()


def test_embedding_backward_on_the_device_uses_no_deprecated_api(device: str) -> None:
    model = tiny("gpt", 11).to(device)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # cupyx.scatter_add warns DeprecationWarning since CuPy 13
        model(np.arange(8).reshape(1, 8)).sum().backward()
    assert device_of(model.transformer.wte.weight.grad) == device


# ------------------------------------------------------------------ the trainer
@pytest.mark.parametrize("kind", ["gpt", "bert"])
def test_trainer_steps_evaluates_and_saves_a_checkpoint_on_the_device(kind: str, device: str, corpus_file: Path,
                                                                     tmp_path: Path) -> None:
    run = trainer(kind, corpus_file, tmp_path / "cache", device, dropout=0.1, checkpoint_dir=tmp_path / "run",
                  eval_interval=3, eval_batches=2)
    result = run.train()
    assert result.steps == 6 and run.model.device == device
    assert np.isfinite(result.evaluations[-1]["val_loss"])
    assert load_checkpoint(tmp_path / "run" / "checkpoint.npz")["step"] == 6


@pytest.mark.parametrize("kind", ["gpt", "bert"])
def test_resume_with_dropout_on_the_device_equals_the_uninterrupted_run(kind: str, device: str, corpus_file: Path,
                                                                       tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    straight = trainer(kind, corpus_file, cache, device, dropout=0.1)
    straight.train()
    first = trainer(kind, corpus_file, cache, device, dropout=0.1, checkpoint_dir=tmp_path / "run")
    first.train(until_step=3)
    resumed = trainer(kind, corpus_file, cache, device, dropout=0.1, checkpoint_dir=tmp_path / "run")
    resumed.train(resume=True)
    assert resumed.step == 6
    assert [r["loss"] for r in first.history + resumed.history] == [r["loss"] for r in straight.history]
    assert_same_parameters(straight.model, resumed.model, rtol=0.0)


def test_ctrl_c_on_the_device_saves_a_checkpoint(device: str, corpus_file: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    run = trainer("gpt", corpus_file, tmp_path / "cache", device, dropout=0.1, checkpoint_dir=tmp_path / "run")
    original_step = run.train_step

    def step_then_interrupt() -> dict:
        record = original_step()
        if run.step == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return record

    monkeypatch.setattr(run, "train_step", step_then_interrupt)
    result = run.train()
    assert result.stopped_early == "interrupted" and run.step == 2
    assert load_checkpoint(tmp_path / "run" / "checkpoint.npz")["step"] == 2


@CUDA_ONLY
@pytest.mark.parametrize("kind", ["gpt", "bert"])
@pytest.mark.parametrize("accumulation", [1, 2])
def test_a_training_step_on_the_device_equals_the_cpu_step(kind: str, accumulation: int, device: str,
                                                          corpus_file: Path, tmp_path: Path) -> None:
    on_cpu = trainer(kind, corpus_file, tmp_path / "cache", "cpu", gradient_accumulation_steps=accumulation)
    on_gpu = trainer(kind, corpus_file, tmp_path / "cache", device, gradient_accumulation_steps=accumulation)
    for _ in range(2):
        cpu_record, gpu_record = on_cpu.train_step(), on_gpu.train_step()
        for key in ("loss", "grad_norm", "accuracy"):
            assert gpu_record[key] == pytest.approx(cpu_record[key], rel=RTOL), key
    assert_same_parameters(on_cpu.model, on_gpu.model)
    assert on_gpu.evaluate()["val_loss"] == pytest.approx(on_cpu.evaluate()["val_loss"], rel=RTOL)


# ------------------------------------------------------------------ optimizers
@pytest.mark.parametrize("optimizer", [SGD, AdamW])
def test_optimizers_step_on_the_device_as_on_the_cpu(optimizer: type, device: str) -> None:
    options = {"momentum": 0.9} if optimizer is SGD else {}
    results = []
    for where in ("cpu", device):
        model = tiny("gpt", 11).to(where)
        opt = optimizer(model.parameters(), lr=0.01, **options)
        for _ in range(2):
            model.zero_grad()
            (model(np.arange(8).reshape(1, 8)) ** 2).mean().backward()
            opt.step()
        results.append(model)
    assert_same_parameters(*results)


@CUDA_ONLY
def test_optimizer_state_follows_the_model_to_the_device(device: str) -> None:
    def run(move_after_first_step: bool) -> GPT:
        model = tiny("gpt", 11)
        opt = AdamW(model.parameters(), lr=0.01)
        for step in range(2):
            if step == 1 and move_after_first_step:
                model.to(device)
            model.zero_grad()
            (model(np.arange(8).reshape(1, 8)) ** 2).mean().backward()
            opt.step()
        return model

    moved = run(move_after_first_step=True)
    assert moved.device == device
    assert_same_parameters(run(move_after_first_step=False), moved)


def test_dropout_without_a_generator_names_one_of_the_tensors_device(device: str) -> None:
    x = mp.tensor(np.ones((2, 3)), device=device)
    with pytest.raises(ValueError, match="rng=") as error:
        mp.ops.dropout(x, 0.5, None)
    advice = str(error.value)
    assert ("cupy" in advice) == (device == "cuda"), advice


# ------------------------------------------------------------------ generation, fill-mask, probes
@pytest.mark.parametrize("use_cache", [True, False])
def test_generate_from_a_device_prompt_equals_the_cpu_samples(use_cache: bool, device: str) -> None:
    prompt = np.array([[1, 2, 3], [4, 5, 6]])
    expected = generate(tiny("gpt", 11), prompt, 5, temperature=0.0, use_cache=use_cache)
    model = tiny("gpt", 11).to(device)
    for given in (on_device(prompt, device), mp.tensor(prompt, device=device)):
        out = generate(model, given, 5, temperature=0.0, use_cache=use_cache)
        assert isinstance(out, np.ndarray)
        np.testing.assert_array_equal(out, expected)


class WordTokenizer:
    words = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "dog", "ran"]
    pad_id, cls_id, sep_id, mask_id = 0, 1, 2, 3
    vocab_size = len(words)

    def encode(self, text: str, allowed_special: object = "none") -> list[int]:
        return [self.mask_id if w == "[mask]" else self.words.index(w) for w in text.lower().split()]

    def decode(self, ids: list[int]) -> str:
        return " ".join(self.words[i] for i in ids)


def test_fill_mask_on_the_device_equals_the_cpu(device: str) -> None:
    expected = fill_mask(tiny("bert", 11), WordTokenizer(), "the cat [MASK] on the mat", top_k=3)
    got = fill_mask(tiny("bert", 11).to(device), WordTokenizer(), "the cat [MASK] on the mat", top_k=3)
    assert [c["token"] for c in got] == [c["token"] for c in expected]
    np.testing.assert_allclose([c["score"] for c in got], [c["score"] for c in expected], rtol=RTOL)


@pytest.mark.parametrize("kind", ["gpt", "bert"])
def test_probe_features_from_a_device_model_equal_the_cpu_ones(kind: str, device: str) -> None:
    texts = ["abc", "hello world", "b", "zz top"]
    tokenizer = CharTokenizer()
    tokenizer.train(" ".join(texts))
    cpu_model = tiny(kind, tokenizer.vocab_size)
    expected = extract_features(cpu_model, tokenizer, texts, max_len=SEQ_LEN)
    model = tiny(kind, tokenizer.vocab_size).to(device)
    np.testing.assert_allclose(extract_features(model, tokenizer, texts, max_len=SEQ_LEN), expected, rtol=RTOL,
                               atol=1e-6)
    result = probe_model(model, tokenizer, texts * 3, [0, 1, 0, 1] * 3, texts, [0, 1, 0, 1], max_len=SEQ_LEN,
                         steps=20)
    assert 0.0 <= result.test_accuracy <= 1.0


# ------------------------------------------------------------------ Hugging Face checkpoints
@pytest.mark.parametrize("kind", ["gpt", "bert"])
def test_hugging_face_checkpoints_save_from_and_load_to_the_device(kind: str, device: str, tmp_path: Path) -> None:
    model = tiny(kind, 11, seed=4).to(device)
    save_hf_checkpoint(model, tmp_path / "hf")
    loaded = load_hf_checkpoint(tmp_path / "hf", device=device)
    assert loaded.device == device
    assert_same_parameters(model, loaded, rtol=0.0)
    ids = np.arange(6).reshape(1, 6)
    np.testing.assert_array_equal(host(loaded(ids)), host(model(ids)))


# ------------------------------------------------------------------ MINIPRETRAIN_DEVICE
@CUDA_ONLY
def test_minipretrain_device_is_honoured_by_models_parameters_tensors_and_the_trainer(
        device: str, corpus_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINIPRETRAIN_DEVICE", device)
    assert mp.tensor([1.0]).device == device
    assert mp.Tensor([1.0]).device == device
    assert Parameter(np.zeros(3)).device == device
    assert tiny("gpt", 11).device == device and tiny("bert", 11).device == device
    run = trainer("gpt", corpus_file, tmp_path / "cache", None)
    assert run.model.device == device
    run.train_step()
    assert all(device_of(p.grad) == device for p in run.model.parameters())


# ------------------------------------------------------------------ the MFU peak
@CUDA_ONLY
def test_the_gpu_matmul_peak_is_keyed_by_the_gpus_name_and_warmed(device: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from minipretrain.training import hardware

    assert hardware.gpu_name() in hardware._machine_key(device, "float32")
    timed: list[int] = []
    monkeypatch.setattr(hardware.time, "perf_counter", lambda: float(len(timed.append(0) or timed)))
    # Every perf_counter call advances the fake clock by one: 3 warm-ups (started, never read) and 2 timings
    # (start and end), each of 10 matmuls, so each timing reads 1 s for 10 matmuls.
    peak = hardware.measure_matmul_peak(device, size=8, repeats=2)
    assert len(timed) == 3 + 2 * 2
    assert peak == pytest.approx(2.0 * 8**3 / (1 / 10))
