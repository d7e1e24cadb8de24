"""ELECTRA generator and discriminator: parity with transformers (random weights, padding, float64/float32),
checkpoints both ways, gradients vs torch autograd, the shared embeddings of the pair."""
from __future__ import annotations

import numpy as np
import pytest

from minipretrain import ops
from minipretrain.interop import load_hf_checkpoint, save_hf_checkpoint
from minipretrain.models.electra import ELECTRA, ElectraConfig, ELECTRAConfig, ElectraDiscriminator, ElectraGenerator
from minipretrain.ops.binary_cross_entropy import binary_cross_entropy_with_logits

VOCAB = 37
TOLERANCE = {"float64": 1e-10, "float32": 1e-4}


def config(embedding=12, hidden=16, dtype="float64", seed=3):
    return ElectraConfig(vocab_size=VOCAB, embedding_size=embedding, hidden_size=hidden, num_hidden_layers=2,
                         num_attention_heads=2, intermediate_size=24, max_position_embeddings=12, dropout=0.0,
                         dtype=dtype, seed=seed)


def inputs(seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, VOCAB, size=(3, 9))
    mask = np.arange(9)[None, :] < np.array([[9], [6], [2]])
    types = (np.arange(9)[None, :] >= 4).astype(np.int64).repeat(3, 0)
    return ids, mask, types


def _hf(tmp_path, head, embedding, hidden, dtype):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    hf_config = transformers.ElectraConfig(vocab_size=VOCAB, embedding_size=embedding, hidden_size=hidden,
                                           num_hidden_layers=2, num_attention_heads=2, intermediate_size=24,
                                           max_position_embeddings=12, hidden_dropout_prob=0.0,
                                           attention_probs_dropout_prob=0.0)
    cls = transformers.ElectraForMaskedLM if head == "generator" else transformers.ElectraForPreTraining
    model = cls(hf_config).to(getattr(torch, dtype)).eval()
    with torch.no_grad():  # LayerNorm gains 1 and biases 0 at init: randomise them so a mis-wired one shows
        for name, p in model.named_parameters():
            if "LayerNorm" in name or name.endswith("bias"):
                p.copy_(p + 0.2 * torch.randn_like(p))
    model.save_pretrained(tmp_path / "hf")
    return torch, model


def _theirs(torch, model, ids, mask, types):
    with torch.no_grad():
        return model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask.astype(np.int64)),
                     token_type_ids=torch.tensor(types)).logits.numpy()


@pytest.mark.parametrize("head", ["generator", "discriminator"])
@pytest.mark.parametrize("embedding, hidden", [(12, 16), (16, 16)], ids=["E<H", "E=H"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_logits_equal_transformers_with_padding(tmp_path, head, embedding, hidden, dtype):
    torch, theirs = _hf(tmp_path, head, embedding, hidden, dtype)
    ours = load_hf_checkpoint(tmp_path / "hf")
    assert isinstance(ours, ElectraGenerator if head == "generator" else ElectraDiscriminator)
    assert hasattr(ours.electra, "embeddings_project") == (embedding != hidden)
    ids, mask, types = inputs()
    expected = _theirs(torch, theirs, ids, mask, types)
    got = ours.eval()(ids, mask, types).numpy()
    error = np.abs(got - expected)[mask].max()
    print(f"ELECTRA {head} E={embedding} H={hidden} {dtype}: max |logits - transformers| = {error:.2e}")
    assert error <= TOLERANCE[dtype] * max(1.0, np.abs(expected).max())


@pytest.mark.parametrize("head", ["generator", "discriminator"])
def test_our_save_opens_in_transformers_without_warnings_and_agrees(tmp_path, head):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    ours = (ElectraGenerator if head == "generator" else ElectraDiscriminator)(config()).eval()
    save_hf_checkpoint(ours, tmp_path)
    cls = transformers.ElectraForMaskedLM if head == "generator" else transformers.ElectraForPreTraining
    theirs, info = cls.from_pretrained(tmp_path, output_loading_info=True, dtype=torch.float64)
    assert not any(info[key] for key in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    ids, mask, types = inputs(1)
    expected = _theirs(torch, theirs.eval(), ids, mask, types)
    np.testing.assert_allclose(ours(ids, mask, types).numpy(), expected, rtol=0,
                               atol=TOLERANCE["float64"] * np.abs(expected).max())
    np.testing.assert_array_equal(load_hf_checkpoint(tmp_path).eval()(ids, mask, types).numpy(),
                                  ours(ids, mask, types).numpy())


@pytest.mark.parametrize("head", ["generator", "discriminator"])
def test_gradients_of_a_loss_equal_torch_autograd(tmp_path, head):
    torch, theirs = _hf(tmp_path, head, 12, 16, "float64")
    ours = load_hf_checkpoint(tmp_path / "hf").eval()
    ids, mask, types = inputs(2)
    logits = theirs(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask.astype(np.int64)),
                    token_type_ids=torch.tensor(types)).logits
    ours_logits = ours(ids, mask, types)
    if head == "generator":
        labels = np.where(mask, ids, -100)
        reference = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), torch.tensor(labels).reshape(-1))
        loss = ops.cross_entropy(ours_logits, labels)
    else:
        targets = (np.random.default_rng(0).random(ids.shape) < 0.3).astype(np.float64)
        weight = torch.tensor(mask.astype(np.float64))
        reference = (torch.nn.functional.binary_cross_entropy_with_logits(
            logits, torch.tensor(targets), reduction="none") * weight).sum() / weight.sum()
        loss = binary_cross_entropy_with_logits(ours_logits, targets, mask=mask)
    reference.backward()
    loss.backward()
    assert loss.item() == pytest.approx(reference.item(), rel=1e-12)
    expected = {name: p.grad.numpy() for name, p in theirs.named_parameters() if p.grad is not None}
    # relative to each tensor's largest entry, but at least 1e-6: the key biases' gradient is exactly 0 in exact
    # arithmetic (adding q·b_k to every score of a row leaves the softmax unchanged), so both sides hold ~1e-17
    # of rounding noise there, whose ratio means nothing
    errors = {name: float(np.abs(p.grad - expected[name]).max() / max(np.abs(expected[name]).max(), 1e-6))
              for name, p in ours.named_parameters()}
    worst = max(errors.values())
    assert worst < 1e-10, {name: e for name, e in errors.items() if e > 1e-10}
    print(f"ELECTRA {head} gradients: worst max-relative error = {worst:.2e}")
    assert worst < 1e-10


def test_the_pair_shares_embeddings_and_dropout_and_counts_them_once():
    pair = ELECTRA(ELECTRAConfig(discriminator=config(embedding=16, hidden=64), generator=config(16, 16)))
    shared = pair.discriminator.electra.embeddings
    assert pair.generator.electra.embeddings is shared
    assert pair.generator.generator_lm_head.weight is shared.word_embeddings.weight
    assert pair.generator.source is pair.discriminator.source is pair.source
    names = [name for name, _ in pair.named_parameters()]
    assert "discriminator.electra.embeddings.word_embeddings.weight" in names
    assert not any(name.startswith("generator.electra.embeddings.") for name in names)
    total = pair.discriminator.num_parameters() + pair.generator.num_parameters() - shared.num_parameters()
    assert pair.num_parameters() == total
    ids, mask, types = inputs()
    assert pair(ids, mask).shape == (3, 9) and pair.generator(ids, mask).shape == (3, 9, VOCAB)


def test_the_pair_saves_as_its_two_halves(tmp_path):
    from minipretrain.interop import UnsupportedCheckpointError

    pair = ELECTRA(ELECTRAConfig(discriminator=config(embedding=16, hidden=32), generator=config(16, 16)))
    with pytest.raises(UnsupportedCheckpointError, match="save model.discriminator"):
        save_hf_checkpoint(pair, tmp_path / "pair")
    save_hf_checkpoint(pair.discriminator, tmp_path / "d")
    save_hf_checkpoint(pair.generator, tmp_path / "g")
    ids, mask, types = inputs()
    pair.eval()
    np.testing.assert_array_equal(load_hf_checkpoint(tmp_path / "d").eval()(ids, mask, types).numpy(),
                                  pair(ids, mask, types).numpy())
    np.testing.assert_array_equal(load_hf_checkpoint(tmp_path / "g").eval()(ids, mask, types).numpy(),
                                  pair.generator(ids, mask, types).numpy())


def test_default_generator_is_a_quarter_as_wide_and_mismatches_are_refused():
    pair_config = ELECTRAConfig(discriminator=config(embedding=16, hidden=128))
    assert pair_config.generator.hidden_size == 32 and pair_config.generator.embedding_size == 16
    with pytest.raises(ValueError, match="embedding_size must"):
        ELECTRAConfig(discriminator=config(embedding=16), generator=config(embedding=12))
