"""Calls that used to return a number for a question that makes no sense now say why: fill-mask with a GPT,
perplexity on MLM windows, generation with a BERT, an MLM that masks nothing, float32 x float64 arithmetic,
and Hugging Face folders that are incomplete."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import minipretrain as mp
from minipretrain.data import PretrainingDataset
from minipretrain.errors import ModelKindError
from minipretrain.evaluation import evaluate, evaluate_perplexity, fill_mask, generate
from minipretrain.models import create_model
from minipretrain.objectives import CausalLanguageModeling, MaskedLanguageModeling
from minipretrain.tokenizers import CharTokenizer
from runs import SEQ_LEN, write_corpus


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("misuse")
    corpus = write_corpus(root / "corpus.txt", characters=4000)
    tokenizer = CharTokenizer()
    common = dict(tokenizer=tokenizer, seq_len=SEQ_LEN, split="validation", cache_dir=root / "tokens")
    return {"tokenizer": tokenizer, "clm": PretrainingDataset(corpus, objective="clm", **common),
            "mlm": PretrainingDataset(corpus, objective="mlm", **common),
            "gpt": create_model("gpt", tokenizer.vocab_size, n_layer=1, n_head=2, n_embd=16, block_size=SEQ_LEN),
            "bert": create_model("bert", tokenizer.vocab_size, n_layer=1, n_head=2, n_embd=16, block_size=SEQ_LEN)}


def test_fill_mask_needs_a_masked_language_model(data) -> None:
    with pytest.raises(ModelKindError, match="fill_mask needs a masked language model.*gpt.*generate"):
        fill_mask(data["gpt"], data["tokenizer"], "ab[MASK]c")
    assert len(fill_mask(data["bert"], data["tokenizer"], "ab[MASK]c", top_k=2)) == 2


def test_generation_needs_a_causal_model(data) -> None:
    with pytest.raises(ModelKindError, match="generate needs a causal model.*bert.*fill_mask"):
        generate(data["bert"], [[0, 1]], max_new_tokens=3)


def test_perplexity_on_mlm_windows_is_refused(data) -> None:
    with pytest.raises(ModelKindError, match="'mlm' windows.*'clm'"):
        evaluate_perplexity(data["gpt"], data["mlm"], batch_size=4)
    with pytest.raises(ModelKindError, match="'clm' windows.*'mlm'"):
        evaluate(data["bert"], data["clm"], MaskedLanguageModeling(data["bert"], data["tokenizer"]), batch_size=4)
    assert np.isfinite(evaluate_perplexity(data["gpt"], data["clm"], batch_size=4))


def test_an_mlm_that_masks_nothing_is_refused(data) -> None:
    with pytest.raises(ValueError, match=r"mask_prob must lie in \(0, 1\].*nothing would be predicted"):
        MaskedLanguageModeling(data["bert"], data["tokenizer"], mask_prob=0.0)


def test_float32_and_float64_tensors_do_not_mix_silently() -> None:
    single = mp.tensor(np.ones(3, np.float32), requires_grad=True)
    double = mp.tensor(np.ones(3, np.float64), requires_grad=True)
    for operation in (lambda: single * double, lambda: double + single, lambda: single @ double):
        with pytest.raises(TypeError, match=r"float32 and float64.*\.astype"):
            operation()
    assert single.grad is None and double.grad is None  # refused before any graph was built
    # Made explicit, it works: astype gives a float64 leaf (a copy cut from the graph), whose gradient is float64.
    converted = single.astype("float64")
    (converted * double).sum().backward()
    assert converted.grad.dtype == np.float64 and double.grad.dtype == np.float64 and single.grad is None
    # Python numbers and NumPy arrays beside a Tensor take its dtype (as before).
    assert (single * np.float64(2.0)).dtype == np.float32 and (single * np.ones(3)).dtype == np.float32


def hf_folder(tmp_path: Path, data) -> Path:
    from minipretrain.interop import save_hf_checkpoint

    return save_hf_checkpoint(data["gpt"], tmp_path / "hf")


def test_a_hugging_face_folder_without_config_json(tmp_path, data) -> None:
    from minipretrain.interop import HFCheckpointError, load_hf_checkpoint

    folder = hf_folder(tmp_path, data)
    (folder / "config.json").unlink()
    with pytest.raises(HFCheckpointError, match=f"{folder}.*no config.json"):
        load_hf_checkpoint(folder)


def test_a_hugging_face_config_with_invalid_json_or_a_missing_key(tmp_path, data) -> None:
    from minipretrain.interop import HFCheckpointError, load_hf_checkpoint

    folder = hf_folder(tmp_path, data)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text('{"model_type": "gpt2", ')
    with pytest.raises(HFCheckpointError, match=r"config.json is not valid JSON \(.*line 1 column"):
        load_hf_checkpoint(folder)
    (folder / "config.json").write_text("[1, 2]")
    with pytest.raises(HFCheckpointError, match=r"config.json holds a list, not a JSON object"):
        load_hf_checkpoint(folder)
    del config["n_embd"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(HFCheckpointError, match=r"config.json has no 'n_embd'.*gpt2"):
        load_hf_checkpoint(folder)
