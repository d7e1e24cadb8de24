"""Headless BERT encoders (a bare ``BertModel``, a sentence-transformers folder) load into a BERT without MLM
head: ``encode`` matches ``transformers`` with padding, and asking for MLM logits says there is no head."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from minipretrain.interop import load_hf_checkpoint, save_hf_checkpoint
from minipretrain.models import create_model

VOCAB = 41


def padded_batch() -> tuple[np.ndarray, np.ndarray]:
    ids = np.random.default_rng(4).integers(1, VOCAB, size=(3, 10))
    mask = np.ones(ids.shape, dtype=np.int64)
    mask[1, 6:] = 0
    mask[2, 3:] = 0
    ids[mask == 0] = 0
    return ids, mask


def strip_head(folder: Path) -> None:
    """Turn a saved BertForMaskedLM into a bare BertModel file: no cls.*, no ``bert.`` prefix."""
    tensors = load_file(str(folder / "model.safetensors"))
    save_file({name.removeprefix("bert."): array for name, array in tensors.items() if not name.startswith("cls.")},
              str(folder / "model.safetensors"), metadata={"format": "pt"})


def test_a_checkpoint_without_mlm_head_loads_as_an_encoder(tmp_path: Path) -> None:
    full = create_model("bert", VOCAB, n_layer=2, n_head=2, n_embd=16, block_size=12, dropout=0.0, seed=2)
    save_hf_checkpoint(full, tmp_path)
    strip_head(tmp_path)
    encoder = load_hf_checkpoint(tmp_path)
    assert encoder.config.mlm_head is False and encoder.cls is None
    assert encoder.num_parameters() < full.num_parameters()
    ids, mask = padded_batch()
    full.eval(), encoder.eval()
    np.testing.assert_array_equal(encoder.encode(ids, mask).numpy(), full.encode(ids, mask).numpy())
    with pytest.raises(ValueError, match="no MLM head.*encode"):
        encoder(ids, mask)
    save_hf_checkpoint(encoder, tmp_path / "again")  # and it saves as a BertModel
    assert json.loads((tmp_path / "again" / "config.json").read_text())["architectures"] == ["BertModel"]
    assert load_hf_checkpoint(tmp_path / "again").config.mlm_head is False


# ------------------------------------------------------------------------------------------ against transformers
@pytest.fixture(scope="module")
def reference_encoder(tmp_path_factory: pytest.TempPathFactory):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=VOCAB, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=24, max_position_embeddings=12, hidden_dropout_prob=0.0,
                                     attention_probs_dropout_prob=0.0)
    model = transformers.BertModel(config).eval()  # random weights, pooler included: no download
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    folder = tmp_path_factory.mktemp("bare-bert")
    model.save_pretrained(folder, safe_serialization=True)
    return torch, model, folder


def expected_hidden_states(torch, model) -> np.ndarray:
    ids, mask = padded_batch()
    with torch.no_grad():
        return model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).last_hidden_state.numpy()


@pytest.mark.reference
def test_a_bare_bert_model_encodes_as_transformers_does(reference_encoder) -> None:
    torch, model, folder = reference_encoder
    ours = load_hf_checkpoint(folder).eval()
    assert ours.config.mlm_head is False
    ids, mask = padded_batch()
    np.testing.assert_allclose(ours.encode(ids, mask).numpy(), expected_hidden_states(torch, model), rtol=0,
                               atol=1e-5)
    with pytest.raises(ValueError, match="no MLM head"):
        ours(ids, mask)


@pytest.mark.reference
@pytest.mark.parametrize("module_path", ["", "0_Transformer"])
def test_a_sentence_transformers_folder_loads_its_transformer_module(reference_encoder, tmp_path: Path,
                                                                     module_path: str) -> None:
    torch, model, _ = reference_encoder
    model.save_pretrained(tmp_path / module_path, safe_serialization=True)
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 16,
                                                                     "pooling_mode_mean_tokens": True}))
    (tmp_path / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": module_path, "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]))
    ours = load_hf_checkpoint(tmp_path).eval()
    ids, mask = padded_batch()
    np.testing.assert_allclose(ours.encode(ids, mask).numpy(), expected_hidden_states(torch, model), rtol=0,
                               atol=1e-5)
