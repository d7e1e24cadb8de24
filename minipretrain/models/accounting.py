"""What a model costs: parameter counts (for scaling-law plots) and training FLOPs per token (for MFU).

Every model's ``flops_per_token`` and ``python -m minipretrain models`` use these two formulas, so the count
printed without building a model is the one a built model reports.
"""
from __future__ import annotations

from typing import Any


def count_parameters(model: Any, non_embedding: bool = True) -> int:
    """Learnable scalars of ``model`` (tied weights once); ``non_embedding`` leaves out the token, position
    (and BERT's token-type) tables — ``model.embedding_parameters()`` — as Kaplan et al. (2020) do."""
    total = model.num_parameters()
    if non_embedding and hasattr(model, "embedding_parameters"):
        total -= sum(p.size for p in model.embedding_parameters())
    return total


def training_flops_per_token(matmul_weights: int, n_layer: int, seq_len: int, n_embd: int) -> float:
    """Forward + backward FLOPs per token: 6·N + 12·L·T·C, as in PaLM (appendix B) and nanoGPT's MFU estimate.

    Each matrix-multiply weight costs 2 FLOPs per token forward and 4 backward (6·N); attention's QKᵀ and PV
    add 2·2·T·C per layer forward, times 3 with backward (12·L·T·C). N (``matmul_weights``) counts the
    weights that are multiplied: the non-embedding parameters *plus* a tied output projection V·C (a real
    matmul, though its weight is the embedding); position tables are lookups and cost nothing. LayerNorms,
    GELU, softmax and biases are left out, as usual.
    """
    return 6.0 * matmul_weights + 12.0 * n_layer * seq_len * n_embd


def expected_parameters(kind: str, vocab_size: int, n_layer: int, n_embd: int, block_size: int,
                        type_vocab_size: int = 2, n_head: int | None = None) -> dict[str, int]:
    """Closed-form parameter counts (with biases) of a GPT, BERT, T5 or ELECTRA built from the shared sizes, to
    check the models against and to print without building.

    Per block: attention 4C² + 4C, MLP 8C² + 5C, two LayerNorms 4C  ->  12C² + 13C.
    GPT adds the tables (V + P)·C and ln_f 2C. BERT adds (V + P + S)·C, the embedding LayerNorm 2C, and the
    MLM head C² + C (dense) + 2C (LayerNorm) + V (decoder bias).
    T5 (no biases, RMS norms of C, d_ff = 4C): encoder blocks 12C² + 2C, decoder blocks 16C² + 3C, two final
    norms 2C, the shared table V·C and two bucket tables 32·H (``n_head`` needed).
    ELECTRA: the discriminator is BERT-shaped with a head C² + C + C + 1; the default generator (width g =
    max(C/4, 16)) adds the projection C·g + g, L blocks 12g² + 13g, its head g·C + C + 2C and the bias V.
    Also returned: ``"per_model"``, the non-embedding count of each model that runs per token (ELECTRA's two
    each with the shared embedding LayerNorm 2C), which :func:`expected_flops_per_token` needs.
    """
    c = n_embd
    blocks = n_layer * (12 * c * c + 13 * c)
    if kind == "gpt":
        embeddings = (vocab_size + block_size) * c
        non_embedding = blocks + 2 * c
        per_model = [non_embedding]
    elif kind == "bert":
        embeddings = (vocab_size + block_size + type_vocab_size) * c
        non_embedding = blocks + 2 * c + c * c + 3 * c + vocab_size
        per_model = [non_embedding]
    elif kind == "t5":
        if n_head is None:
            raise ValueError("expected_parameters: a T5's count needs n_head (its relative-position tables are 32×H)")
        embeddings = vocab_size * c
        non_embedding = n_layer * (12 * c * c + 2 * c) + n_layer * (16 * c * c + 3 * c) + 2 * c + 2 * 32 * n_head
        per_model = [non_embedding]
    elif kind == "electra":
        g = max(c // 4, 16)
        embeddings = (vocab_size + block_size + type_vocab_size) * c
        discriminator = 2 * c + blocks + (c * c + c) + (c + 1)
        generator = (c * g + g) + n_layer * (12 * g * g + 13 * g) + (g * c + c) + 2 * c + vocab_size
        non_embedding = discriminator + generator
        per_model = [discriminator, generator + 2 * c]
    else:
        raise ValueError(f"expected_parameters knows 'gpt', 'bert', 't5' and 'electra', not {kind!r}")
    return {"total": embeddings + non_embedding, "non_embedding": non_embedding, "per_model": per_model}


def expected_flops_per_token(kind: str, vocab_size: int, n_layer: int, n_head: int, n_embd: int,
                             seq_len: int) -> float:
    """What a model of the shared sizes reports as ``flops_per_token(seq_len)``, without building it (the
    ``models`` CLI prints it): :func:`training_flops_per_token` of each model that runs per token, its tied
    output projection included. T5 counts L encoder and 2·L decoder attentions (self and cross); ELECTRA adds
    its generator (width max(C/4, 16)) to its discriminator."""
    counts = expected_parameters(kind, vocab_size, n_layer, n_embd, seq_len, n_head=n_head)["per_model"]
    if kind in ("gpt", "bert"):
        return training_flops_per_token(counts[0] + vocab_size * n_embd, n_layer, seq_len, n_embd)
    if kind == "t5":
        return training_flops_per_token(counts[0] + vocab_size * n_embd, 3 * n_layer, seq_len, n_embd)
    g = max(n_embd // 4, 16)
    return (training_flops_per_token(counts[0], n_layer, seq_len, n_embd)
            + training_flops_per_token(counts[1] + vocab_size * n_embd, n_layer, seq_len, g))
