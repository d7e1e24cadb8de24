"""Hugging Face checkpoints: our own round trip (always), and equivalence with ``transformers`` (optional)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import minipretrain as mp
from minipretrain import ops
from minipretrain.interop import UnsupportedCheckpointError, load_hf_checkpoint, save_hf_checkpoint
from minipretrain.models import BERT, GPT, BERTConfig, GPTConfig

VOCAB = 37
TOLERANCE = {"float64": 1e-10, "float32": 1e-4}  # float64 agreement is ~1e-15; 1e-10 still fails a tanh-for-erf GELU (~1e-6)


def our_gpt(dtype="float64") -> GPT:
    return GPT(GPTConfig(vocab_size=VOCAB, n_layer=2, n_head=2, n_embd=16, block_size=12, dtype=dtype, seed=3))


def our_bert(dtype="float64") -> BERT:
    return BERT(BERTConfig(vocab_size=VOCAB, n_layer=2, n_head=2, n_embd=16, max_position_embeddings=12,
                           intermediate_size=24, dropout=0.0, dtype=dtype, seed=3))


def batch(seed=0):
    return np.random.default_rng(seed).integers(0, VOCAB, size=(2, 9))


@pytest.mark.parametrize("make", [our_gpt, our_bert], ids=["gpt", "bert"])
def test_round_trip_through_safetensors(make, tmp_path):
    model = make()
    save_hf_checkpoint(model, tmp_path)
    loaded = load_hf_checkpoint(tmp_path)
    assert type(loaded) is type(model) and loaded.config.n_embd == 16
    assert all(p.dtype == np.float64 for p in loaded.parameters())
    model.eval(), loaded.eval()
    np.testing.assert_array_equal(loaded(batch()).numpy(), model(batch()).numpy())
    assert loaded(batch()).numpy().dtype == np.float64
    assert load_hf_checkpoint(tmp_path, dtype="float32")(batch()).numpy().dtype == np.float32


def test_gpt2model_checkpoints_without_prefix_load(tmp_path):
    """GPT2Model (and OpenAI's gpt2) files name weights 'h.0...', 'wte.weight' and carry causal-mask buffers."""
    model = our_gpt()
    save_hf_checkpoint(model, tmp_path)
    tensors = load_file(str(tmp_path / "model.safetensors"))
    renamed = {name.removeprefix("transformer."): array for name, array in tensors.items()}
    renamed["h.0.attn.bias"] = np.tril(np.ones((1, 1, 12, 12), dtype=np.float64))
    save_file(renamed, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    model.eval()
    np.testing.assert_array_equal(load_hf_checkpoint(tmp_path).eval()(batch()).numpy(), model(batch()).numpy())


@pytest.mark.parametrize("make, setting, value", [
    (our_gpt, "activation_function", "relu"),
    (our_gpt, "n_inner", 20),
    (our_gpt, "scale_attn_by_inverse_layer_idx", True),
    (our_bert, "position_embedding_type", "relative_key"),
    (our_bert, "hidden_act", "gelu_new"),
    (our_bert, "is_decoder", True),
])
def test_unsupported_configurations_are_refused_by_name(make, setting, value, tmp_path):
    save_hf_checkpoint(make(), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config[setting] = value
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedCheckpointError, match=setting):
        load_hf_checkpoint(tmp_path)


def test_other_model_types_are_refused(tmp_path):
    save_hf_checkpoint(our_gpt(), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["model_type"] = "llama"
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedCheckpointError, match="llama"):
        load_hf_checkpoint(tmp_path)


# ------------------------------------------------------------------------------------------ against transformers
@pytest.fixture(scope="module")
def hf():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    return torch, transformers


def hf_gpt(hf, dtype):
    torch, transformers = hf
    config = transformers.GPT2Config(vocab_size=VOCAB, n_positions=12, n_embd=16, n_layer=2, n_head=2,
                                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2LMHeadModel(config).to(getattr(torch, dtype)).eval()
    with torch.no_grad():  # non-zero biases and LayerNorm parameters, so their gradients are tested too
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def hf_bert(hf, dtype):
    torch, transformers = hf
    config = transformers.BertConfig(vocab_size=VOCAB, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=24, max_position_embeddings=12, hidden_dropout_prob=0.0,
                                     attention_probs_dropout_prob=0.0)
    model = transformers.BertForMaskedLM(config).to(getattr(torch, dtype)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def gradients_agree(hf, reference, ours, inputs, targets, tolerance):
    """Cross-entropy of the logits, backward in both; every named parameter's gradient must agree.

    Errors are measured against the largest gradient entry of the whole model, not of each tensor: some
    gradients are zero in exact arithmetic (the attention key bias adds the same q·b to every score of a row,
    which softmax ignores) and are pure rounding noise in both libraries.
    """
    torch, _ = hf
    reference.zero_grad()
    logits = reference(torch.tensor(inputs)).logits
    torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), torch.tensor(targets).reshape(-1)).backward()
    ours.zero_grad()
    ops.cross_entropy(ours(inputs), targets).backward()
    theirs = {name: p.grad.numpy() for name, p in reference.named_parameters()}
    scale = max(np.abs(g).max() for g in theirs.values())
    errors = {name: np.abs(p.grad - theirs[name]).max() / scale for name, p in ours.named_parameters()}
    worst = max(errors, key=errors.get)
    assert errors[worst] < tolerance, f"{worst}: gradient differs by {errors[worst]:.2e} of the largest gradient"


@pytest.mark.reference
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gpt2_from_transformers(hf, dtype, tmp_path):
    torch, transformers = hf
    reference = hf_gpt(hf, dtype)
    reference.save_pretrained(tmp_path)
    ours = load_hf_checkpoint(tmp_path).eval()
    assert ours.config.dtype == dtype
    inputs, targets = batch(1), batch(2)
    with torch.no_grad():
        expected = reference(torch.tensor(inputs)).logits.numpy()
    np.testing.assert_allclose(ours(inputs).numpy(), expected, rtol=0, atol=TOLERANCE[dtype])
    gradients_agree(hf, reference, ours, inputs, targets, TOLERANCE[dtype])


@pytest.mark.reference
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_bert_from_transformers(hf, dtype, tmp_path):
    torch, transformers = hf
    reference = hf_bert(hf, dtype)
    reference.save_pretrained(tmp_path)
    ours = load_hf_checkpoint(tmp_path).eval()
    inputs, targets = batch(3), batch(4)
    mask = np.ones_like(inputs)
    mask[1, 6:] = 0
    segments = np.zeros_like(inputs)
    segments[:, 5:] = 1
    with torch.no_grad():
        out = reference(torch.tensor(inputs), attention_mask=torch.tensor(mask), token_type_ids=torch.tensor(segments),
                        output_hidden_states=True)
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(ours(inputs, mask, segments).numpy(), out.logits.numpy(), rtol=0, atol=tol)
    # BertModel's last_hidden_state: what a probe reads
    np.testing.assert_allclose(ours.encode(inputs, mask, segments).numpy(), out.hidden_states[-1].numpy(),
                               rtol=0, atol=tol)
    gradients_agree(hf, reference, ours, inputs, targets, tol)


@pytest.mark.reference
@pytest.mark.parametrize("make, architecture", [(our_gpt, "GPT2LMHeadModel"), (our_bert, "BertForMaskedLM")],
                         ids=["gpt", "bert"])
def test_our_checkpoints_open_in_transformers(hf, make, architecture, tmp_path):
    torch, transformers = hf
    ours = make()
    with mp.no_grad():
        for p in ours.parameters():  # make biases and norms non-trivial so a dropped entry would show
            p.data += 0.05 * np.random.default_rng(0).standard_normal(p.shape)
    save_hf_checkpoint(ours, tmp_path)
    reference, info = getattr(transformers, architecture).from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert reference.dtype == torch.float64
    with torch.no_grad():
        expected = reference.eval()(torch.tensor(batch(5))).logits.numpy()
    np.testing.assert_allclose(ours.eval()(batch(5)).numpy(), expected, rtol=0, atol=TOLERANCE["float64"])
