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
                        type_vocab_size: int = 2) -> dict[str, int]:
    """Closed-form parameter counts (with biases) of a GPT or BERT, to check the models against and to print
    without building.

    Per block: attention 4C² + 4C, MLP 8C² + 5C, two LayerNorms 4C  ->  12C² + 13C.
    GPT adds the tables (V + P)·C and ln_f 2C. BERT adds (V + P + S)·C, the embedding LayerNorm 2C, and the
    MLM head C² + C (dense) + 2C (LayerNorm) + V (decoder bias).
    """
    c = n_embd
    blocks = n_layer * (12 * c * c + 13 * c)
    if kind == "gpt":
        embeddings = (vocab_size + block_size) * c
        non_embedding = blocks + 2 * c
    elif kind == "bert":
        embeddings = (vocab_size + block_size + type_vocab_size) * c
        non_embedding = blocks + 2 * c + c * c + 3 * c + vocab_size
    else:
        raise ValueError(f"expected_parameters knows 'gpt' and 'bert', not {kind!r}")
    return {"total": embeddings + non_embedding, "non_embedding": non_embedding}
